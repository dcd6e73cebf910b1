/* bm-lab-render helpers: strings and YAML nodes in the lab's scratch arena, bounded integer
 * reads, file:line errors, randomness and atomic file writes. */
#include "lab_render.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

void lab_die_oom(void)
{
	fputs("bm-lab-render: out of memory\n", stderr);
	exit(2);
}

/* Make room for n + 1 elements in a realloc'd vector. */
void *lab_grow(void *v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return v;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *nv = realloc(v, ncap * size);

	if (!nv)
		lab_die_oom();
	*cap = ncap;
	return nv;
}

struct bm_ynode *lab_scalar(struct lab *l, const char *s, int quoted)
{
	struct bm_ynode *n = bm_y_scalar(&l->scratch, s, quoted);

	if (!n)
		lab_die_oom();
	return n;
}

/* Strings live in the scratch arena, freed with it at exit. */
const char *lab_str(struct lab *l, const char *s)
{
	return lab_scalar(l, s, 0)->str;
}

const char *lab_fmt(struct lab *l, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		lab_die_oom();
	const char *out = lab_str(l, s);

	free(s);
	return out;
}

struct bm_ynode *lab_map(struct lab *l)
{
	struct bm_ynode *n = bm_y_new(&l->scratch, BM_Y_MAP, 0);

	if (!n)
		lab_die_oom();
	return n;
}

struct bm_ynode *lab_seq(struct lab *l)
{
	struct bm_ynode *n = bm_y_new(&l->scratch, BM_Y_SEQ, 0);

	if (!n)
		lab_die_oom();
	return n;
}

/* Shallow copy: a new map or sequence holding the same children, so that setting a key in the
 * copy leaves the original alone. Scalars are never modified, so they are shared. NULL gives an
 * empty map. */
struct bm_ynode *lab_copy(struct lab *l, const struct bm_ynode *n)
{
	if (n && n->type == BM_Y_SCALAR)
		return (struct bm_ynode *)n;
	struct bm_ynode *c = n && n->type == BM_Y_SEQ ? lab_seq(l) : lab_map(l);

	if (n) {
		c->line = n->line;
		for (size_t i = 0; i < n->n; i++)
			if (bm_y_append(&l->scratch, c, n->kids[i]))
				lab_die_oom();
	}
	return c;
}

void lab_set(struct lab *l, struct bm_ynode *map, const char *key, struct bm_ynode *val)
{
	if (bm_y_set(&l->scratch, map, key, val))
		lab_die_oom();
}

void lab_set_str(struct lab *l, struct bm_ynode *map, const char *key, const char *s, int quoted)
{
	lab_set(l, map, key, lab_scalar(l, s, quoted));
}

void lab_push(struct lab *l, struct bm_ynode *seq, struct bm_ynode *kid)
{
	if (bm_y_append(&l->scratch, seq, kid))
		lab_die_oom();
}

/* Follow "a.b.c" through nested maps. */
const struct bm_ynode *lab_path(const struct bm_ynode *n, const char *dotted)
{
	char key[128];

	while (n && *dotted) {
		size_t len = strcspn(dotted, ".");

		if (len >= sizeof(key))
			return NULL;
		memcpy(key, dotted, len);
		key[len] = '\0';
		n = bm_y_get(n, key);
		dotted += len + (dotted[len] == '.');
	}
	return n;
}

/* An unquoted decimal integer in [min, max]. */
int lab_int(const struct bm_ynode *n, long min, long max, long *out)
{
	const char *s = bm_y_str(n);
	char *end;
	long v;

	if (!s || n->quoted || !*s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* "path:line: message", line from the node when it has one, else the object's. */
int lab_err(char *err, const struct lab_obj *o, const struct bm_ynode *at, const char *fmt, ...)
{
	char msg[LAB_ERRLEN / 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, LAB_ERRLEN, "%s:%d: %s %s/%s: %s", o->path,
		 at && at->line > 0 ? at->line : o->line, o->kind, *o->ns ? o->ns : "-", o->name,
		 msg);
	return -1;
}

int lab_random(void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = getrandom((char *)buf + got, len - got, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

/* Write dir/.name.tmp, then rename it to dir/name: readers see the old or the new file. */
int lab_write_atomic(const char *dir, const char *name, const char *data, size_t len, char *err)
{
	char tmp[4096], dst[4096];
	int fd = -1, rc = -1;
	size_t off = 0;

	if (snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= (int)sizeof(tmp) ||
	    snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= (int)sizeof(dst)) {
		snprintf(err, LAB_ERRLEN, "%s/%s: path too long", dir, name);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, LAB_ERRLEN, "create %.400s: %s", tmp, strerror(errno));
		return -1;
	}
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			snprintf(err, LAB_ERRLEN, "write %.400s: %s", tmp, strerror(errno));
			goto cleanup;
		}
		off += (size_t)w;
	}
	if (close(fd)) {
		fd = -1;
		snprintf(err, LAB_ERRLEN, "close %.400s: %s", tmp, strerror(errno));
		goto cleanup;
	}
	fd = -1;
	if (rename(tmp, dst)) {
		snprintf(err, LAB_ERRLEN, "rename %.400s to %.400s: %s", tmp, dst, strerror(errno));
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (rc)
		unlink(tmp);
	return rc;
}

/* Whole file, NUL-terminated; NULL when it cannot be read (errno set). */
char *lab_read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (!fp)
		return NULL;
	for (;;) {
		if (cap - n < 4096) {
			char *nb = realloc(buf, cap + 65536);

			if (!nb)
				lab_die_oom();
			buf = nb;
			cap += 65536;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, fp);

		n += r;
		if (r == 0)
			break;
	}
	int bad = ferror(fp);

	fclose(fp);
	if (bad) {
		free(buf);
		errno = EIO;
		return NULL;
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}
