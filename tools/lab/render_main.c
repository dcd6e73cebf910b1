/* bm-lab-render: the lab's apiserver. Stores applied manifests, allocates cluster IPs and pods,
 * writes the agents' config dir and prints the plan the lab CLI acts on. See docs/lab.md. */
#include "lab_render.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *fp)
{
	fputs("usage: bm-lab-render COMMAND --state DIR --prefix P --nodes N [FILE|DIR|-]...\n"
	      "  apply FILE...   store the objects, allocate IPs and pods, print the plan\n"
	      "  delete FILE...  remove the objects named in the files, print the plan\n"
	      "  sync            write <state>/config, then bump <state>/config/.generation\n"
	      "  plan            print the plan of what is stored\n"
	      "plan lines:\n"
	      "  svc <name> <ns> <ip4|-> <ip6|-> <port/PROTO,...|->\n"
	      "  pod <name> <ns> <uid> <node> <ip4> <ip6> <sa> <k=v,...|-> <tcp,...|-> <udp,...|->"
	      " <deployment|->\n"
	      "  generation <n>   (sync)\n",
	      fp);
}

static void remove_obj(struct lab *l, struct lab_obj *o)
{
	size_t i = (size_t)(o - l->objs);

	memmove(&l->objs[i], &l->objs[i + 1], (l->n_objs - i - 1) * sizeof(*o));
	l->n_objs--;
}

static int cmd_apply(struct lab *l, struct lab_obj *in, size_t n_in, char *err)
{
	for (size_t i = 0; i < n_in; i++)
		if (lab_validate(l, &in[i], err))
			return -1;
	for (size_t i = 0; i < n_in; i++) {
		struct lab_obj *o = lab_find_obj(l, &in[i]);

		if (o) {
			*o = in[i];
			continue;
		}
		l->objs = lab_grow(l->objs, &l->cap_objs, l->n_objs, sizeof(*l->objs));
		l->objs[l->n_objs++] = in[i];
	}
	return 0;
}

static void cmd_delete(struct lab *l, struct lab_obj *in, size_t n_in)
{
	for (size_t i = 0; i < n_in; i++) {
		struct lab_obj *o = lab_find_obj(l, &in[i]);

		if (o)
			remove_obj(l, o);
		else
			fprintf(stderr, "bm-lab-render: %s:%d: %s %s/%s not found\n", in[i].path,
				in[i].line, in[i].kind, *in[i].ns ? in[i].ns : "-", in[i].name);
	}
}

static void lab_free(struct lab *l)
{
	for (size_t i = 0; i < l->n_files; i++)
		bm_yaml_free(&l->files[i]);
	free(l->files);
	free(l->objs);
	free(l->svcs);
	free(l->pods);
	bm_yaml_free(&l->scratch);
}

static int valid_prefix(const char *p)
{
	size_t len = strlen(p);

	return len >= 1 && len <= 12 && strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789") == len;
}

int main(int argc, char **argv)
{
	struct lab l = { 0 };
	struct lab_obj *in = NULL;
	size_t n_in = 0;
	char err[LAB_ERRLEN] = "";
	char **files;
	const char *cmd;
	int n_files = 0, rc = 1;
	struct stat st;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	if (strcmp(cmd, "apply") && strcmp(cmd, "delete") && strcmp(cmd, "sync") && strcmp(cmd, "plan")) {
		fprintf(stderr, "bm-lab-render: unknown command %s\n", cmd);
		usage(stderr);
		return 2;
	}
	files = calloc((size_t)argc, sizeof(*files));
	if (!files)
		lab_die_oom();
	for (int i = 2; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--state")) {
			l.state = argv[++i];
		} else if (i + 1 < argc && !strcmp(argv[i], "--prefix")) {
			l.prefix = argv[++i];
		} else if (i + 1 < argc && !strcmp(argv[i], "--nodes")) {
			l.nodes = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--")) {
			while (++i < argc)
				files[n_files++] = argv[i];
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "bm-lab-render: unknown option %s\n", argv[i]);
			usage(stderr);
			free(files);
			return 2;
		} else {
			files[n_files++] = argv[i];
		}
	}
	if (!l.state || !l.prefix || !valid_prefix(l.prefix) || l.nodes < 1 ||
	    l.nodes > LAB_MAX_NODES) {
		fprintf(stderr, "bm-lab-render: need --state DIR, --prefix [a-z0-9]{1,12} and --nodes 1-%d\n",
			LAB_MAX_NODES);
		usage(stderr);
		free(files);
		return 2;
	}
	errno = 0;
	if (stat(l.state, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "bm-lab-render: state dir %s: %s\n", l.state,
			errno ? strerror(errno) : "not a directory");
		free(files);
		return 1;
	}
	if (bm_yaml_parse("scratch", "", 0, &l.scratch, err, sizeof(err)))
		goto cleanup;
	if (lab_store_load(&l, err) || lab_alloc_load(&l, err))
		goto cleanup;

	if (!strcmp(cmd, "apply") || !strcmp(cmd, "delete")) {
		if (!n_files) {
			snprintf(err, sizeof(err), "%s needs files", cmd);
			goto cleanup;
		}
		if (lab_load_inputs(&l, files, n_files, &in, &n_in, err))
			goto cleanup;
		if (!strcmp(cmd, "apply")) {
			if (cmd_apply(&l, in, n_in, err))
				goto cleanup;
		} else {
			cmd_delete(&l, in, n_in);
		}
		if (lab_reconcile(&l, err) || lab_render(&l, 0, err) || lab_alloc_save(&l, err) ||
		    lab_store_save(&l, err))
			goto cleanup;
		lab_print_plan(&l, stdout);
	} else if (!strcmp(cmd, "sync")) {
		unsigned long gen;

		if (lab_reconcile(&l, err) || lab_render(&l, 1, err) || lab_alloc_save(&l, err) ||
		    lab_bump_generation(&l, &gen, err))
			goto cleanup;
		printf("generation %lu\n", gen);
	} else { /* plan */
		if (lab_reconcile(&l, err))
			goto cleanup;
		lab_print_plan(&l, stdout);
	}
	if (fflush(stdout)) {
		snprintf(err, sizeof(err), "write stdout: %s", strerror(errno));
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (rc == 1 && *err)
		fprintf(stderr, "bm-lab-render: %s\n", err);
	free(in);
	free(files);
	lab_free(&l);
	return rc;
}
