/* Unit tests of the per-file config cache: only changed files are parsed again, the merged
 * view equals a plain directory load, duplicates across files are errors, removals count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char dir[64];

static void put(const char *name, const char *text)
{
	char path[256], tmp[256];
	FILE *fp;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(tmp, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	assert_int_equal(rename(tmp, path), 0);
}

static void svc(const char *file, const char *name, const char *ip)
{
	char text[512];

	snprintf(text, sizeof(text),
		 "apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec:\n  clusterIP: %s\n"
		 "  ports: [{port: 80}]\n",
		 name, ip);
	put(file, text);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/bmcache%d", getpid());
	return mkdir(dir, 0755);
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void test_reparse_only_changes(void **state)
{
	struct bm_config_cache *cc = bm_config_cache_new();
	struct bm_config *c;
	size_t reparsed;

	(void)state;
	svc("a.yaml", "a", "10.96.0.1");
	svc("b.yaml", "b", "10.96.0.2");
	svc("c.yml", "c", "10.96.0.3");
	put("notes.txt", "not yaml");
	c = bm_config_cache_load(cc, dir, &reparsed);
	assert_int_equal(reparsed, 3);          /* every YAML file, the first time */
	assert_int_equal(c->n_services, 3);
	assert_string_equal(c->services[0].meta.name, "a"); /* in file order */
	assert_string_equal(c->services[2].meta.name, "c");
	bm_config_free(c);

	c = bm_config_cache_load(cc, dir, &reparsed);
	assert_int_equal(reparsed, 0);          /* nothing changed: nothing parsed */
	assert_int_equal(c->n_services, 3);
	bm_config_free(c);

	svc("b.yaml", "b", "10.96.0.22");       /* changed in place (new inode by rename) */
	bm_config_cache_touch(cc, "b.yaml");
	c = bm_config_cache_load(cc, dir, &reparsed);
	assert_int_equal(reparsed, 1);
	assert_int_equal(c->n_services, 3);
	assert_int_equal(c->services[1].cluster_ips[0].a[15], 22);
	bm_config_free(c);

	char path[128];

	snprintf(path, sizeof(path), "%s/a.yaml", dir);
	assert_int_equal(unlink(path), 0);      /* removed */
	bm_config_cache_touch(cc, "a.yaml");
	c = bm_config_cache_load(cc, dir, &reparsed);
	assert_int_equal(reparsed, 0);
	assert_int_equal(c->n_services, 2);
	assert_string_equal(c->services[0].meta.name, "b");
	bm_config_free(c);

	svc("0.yaml", "zero", "10.96.0.9");     /* added, sorts first */
	bm_config_cache_touch(cc, "0.yaml");
	c = bm_config_cache_load(cc, dir, &reparsed);
	assert_int_equal(reparsed, 1);
	assert_string_equal(c->services[0].meta.name, "zero");
	bm_config_free(c);

	/* A change nobody told the cache about is seen at the next full read. */
	svc("c.yml", "c", "10.96.0.33");
	c = bm_config_cache_load(cc, dir, &reparsed);
	assert_int_equal(reparsed, 0);
	bm_config_free(c);
	bm_config_cache_touch(cc, NULL);
	c = bm_config_cache_load(cc, dir, &reparsed);
	assert_int_equal(reparsed, 1);
	assert_int_equal(c->services[2].cluster_ips[0].a[15], 33);
	bm_config_free(c);
	bm_config_cache_free(cc);
}

static void test_duplicates_across_files(void **state)
{
	struct bm_config_cache *cc = bm_config_cache_new();
	struct bm_config *c, *plain = bm_config_new();
	size_t reparsed;
	int found = 0;

	(void)state;
	svc("x1.yaml", "dup", "10.96.1.1");
	svc("x2.yaml", "dup", "10.96.1.2");
	c = bm_config_cache_load(cc, dir, &reparsed);
	bm_config_load_dir(plain, dir);
	/* The same verdict as a plain load: one error, the second copy left out. */
	assert_int_equal(c->n_errors, plain->n_errors);
	for (size_t i = 0; i < c->n_diags; i++)
		found |= strstr(c->diags[i].msg, "x2.yaml:1: Service default/dup: defined twice") != NULL;
	assert_true(found);
	size_t n = 0;

	for (size_t i = 0; i < c->n_services; i++)
		n += !strcmp(c->services[i].meta.name, "dup");
	assert_int_equal(n, 1);
	bm_config_free(c);
	bm_config_free(plain);
	bm_config_cache_free(cc);
}

/* A pinned view outlives later loads that replace or remove its files (ASan checks the reads). */
static void test_pin_keeps_old_parses(void **state)
{
	struct bm_config_cache *cc = bm_config_cache_new();
	struct bm_config *old, *now;
	struct bm_config_pin *pin;
	size_t n;

	(void)state;
	svc("a.yaml", "alpha", "10.96.0.1");
	svc("b.yaml", "beta", "10.96.0.2");
	old = bm_config_cache_load(cc, dir, &n);
	assert_int_equal(old->n_services, 2);
	pin = bm_config_cache_pin(cc);
	assert_non_null(pin);
	svc("a.yaml", "gamma", "10.96.0.3"); /* replaced */
	char path[128];

	snprintf(path, sizeof(path), "%s/b.yaml", dir);
	assert_int_equal(unlink(path), 0); /* removed */
	bm_config_cache_touch(cc, "a.yaml");
	bm_config_cache_touch(cc, "b.yaml");
	now = bm_config_cache_load(cc, dir, &n);
	assert_int_equal(now->n_services, 1);
	assert_string_equal(now->services[0].meta.name, "gamma");
	/* The old view still reads what it was built from. */
	assert_string_equal(old->services[0].meta.name, "alpha");
	assert_string_equal(old->services[1].meta.name, "beta");
	bm_config_free(now);
	bm_config_cache_touch(cc, NULL);
	now = bm_config_cache_load(cc, dir, &n); /* and again: the pin still holds */
	assert_string_equal(old->services[1].meta.name, "beta");
	bm_config_free(old);
	bm_config_pin_free(pin);
	bm_config_free(now);
	bm_config_cache_free(cc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reparse_only_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicates_across_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pin_keeps_old_parses, setup, teardown),
	};

	return cmocka_run_group_tests_name("per-file config cache", tests, NULL, NULL);
}
