/* Field-level readers of the config loader: labels, (map, key) wrappers of the typed readers,
 * the "unsupported field" walker, exportTo, metadata, and growable arrays for the model. */
#include "config_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- labels ---- */

/* Label name part: 1..63 of [A-Za-z0-9-_.], alphanumeric at both ends. */
static bool label_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > 63)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9');

		if (!alnum && ((i == 0 || i == len - 1) || !strchr("-_.", ch)))
			return false;
	}
	return true;
}

static bool label_key_ok(const char *k)
{
	const char *slash = strchr(k, '/');

	if (!slash)
		return label_name_ok(k, strlen(k));
	char prefix[254];
	size_t plen = (size_t)(slash - k);

	if (plen == 0 || plen >= sizeof(prefix))
		return false;
	memcpy(prefix, k, plen);
	prefix[plen] = '\0';
	return bm_cfg_is_dns_subdomain(prefix) && label_name_ok(slash + 1, strlen(slash + 1));
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct bm_label *)a)->key, ((const struct bm_label *)b)->key);
}

void bm_cfg_labels_free(struct bm_labels *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].val);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int bm_px_labels(struct bm_px *p, const struct bm_ynode *v, struct bm_labels *out)
{
	struct bm_labels l = { 0 };
	unsigned errors = p->errors;
	int r = bm_px_map(p, v);

	if (r != 1)
		return r;
	for (size_t i = 0; i + 1 < v->n; i += 2) {
		const struct bm_ynode *k = v->kids[i], *val = v->kids[i + 1];
		size_t m = bm_px_push(p, k->str);
		const char *s = "";

		if (!label_key_ok(k->str))
			bm_px_err(p, k->line, "invalid label key (at most 63 of [A-Za-z0-9-_.], "
					      "alphanumeric at both ends, optional DNS prefix and '/')");
		else if (!bm_y_is_null(val) && bm_px_str(p, val, &s) == 1 &&
			 s[0] && !label_name_ok(s, strlen(s)))
			bm_px_err(p, val->line, "invalid label value \"%.64s\" (at most 63 of "
						"[A-Za-z0-9-_.], alphanumeric at both ends)", s);
		else if (p->errors == errors) {
			struct bm_label *lb = bm_px_grow(p, &l.v, &l.n, sizeof(*l.v));

			if (lb) {
				lb->key = bm_px_strdup(p, k->str);
				lb->val = bm_px_strdup(p, s);
			}
		}
		bm_px_pop(p, m);
	}
	if (p->errors != errors) {
		bm_cfg_labels_free(&l);
		return -1;
	}
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), label_cmp);
	*out = l;
	return 1;
}

/* ---- field readers ---- */

const struct bm_ynode *bm_px_val(const struct bm_ynode *map, const char *key)
{
	const struct bm_ynode *v = bm_y_get(map, key);

	return bm_y_is_null(v) ? NULL : v;
}

int bm_px_key_line(const struct bm_ynode *map, const char *key)
{
	if (map && map->type == BM_Y_MAP)
		for (size_t i = 0; i + 1 < map->n; i += 2)
			if (!strcmp(map->kids[i]->str, key))
				return map->kids[i]->line;
	return map ? map->line : 0;
}

#define FIELD(p, map, key, call)                               \
	do {                                                   \
		const struct bm_ynode *v = bm_px_val(map, key); \
		size_t m;                                      \
		int r;                                         \
		if (!v)                                        \
			return 0;                              \
		m = bm_px_push(p, key);                        \
		r = call;                                      \
		bm_px_pop(p, m);                               \
		return r;                                      \
	} while (0)

int bm_px_fmap(struct bm_px *p, const struct bm_ynode *map, const char *key,
	       const struct bm_ynode **out)
{
	FIELD(p, map, key, (*out = v, bm_px_map(p, v)));
}

int bm_px_fseq(struct bm_px *p, const struct bm_ynode *map, const char *key,
	       const struct bm_ynode **out)
{
	FIELD(p, map, key, (*out = v, bm_px_seq(p, v)));
}

int bm_px_fstr(struct bm_px *p, const struct bm_ynode *map, const char *key, const char **out)
{
	FIELD(p, map, key, bm_px_str(p, v, out));
}

int bm_px_fdup(struct bm_px *p, const struct bm_ynode *map, const char *key, char **out)
{
	const char *s;
	int r = bm_px_fstr(p, map, key, &s);

	if (r == 1) {
		*out = bm_px_strdup(p, s);
		if (!*out)
			return -1;
	}
	return r;
}

int bm_px_fint(struct bm_px *p, const struct bm_ynode *map, const char *key, long long lo,
	       long long hi, long long *out)
{
	FIELD(p, map, key, bm_px_int(p, v, lo, hi, out));
}

int bm_px_fport(struct bm_px *p, const struct bm_ynode *map, const char *key, uint16_t *out)
{
	FIELD(p, map, key, bm_px_port(p, v, out));
}

int bm_px_fbool(struct bm_px *p, const struct bm_ynode *map, const char *key, bool *out)
{
	FIELD(p, map, key, bm_px_bool(p, v, out));
}

int bm_px_fenum(struct bm_px *p, const struct bm_ynode *map, const char *key,
		const char *const *names, int *out)
{
	FIELD(p, map, key, bm_px_enum(p, v, names, out));
}

int bm_px_fproto(struct bm_px *p, const struct bm_ynode *map, const char *key,
		 enum bm_l4proto *out)
{
	FIELD(p, map, key, bm_px_proto(p, v, out));
}

int bm_px_flabels(struct bm_px *p, const struct bm_ynode *map, const char *key,
		  struct bm_labels *out)
{
	FIELD(p, map, key, bm_px_labels(p, v, out));
}

static int strs(struct bm_px *p, const struct bm_ynode *v, char ***out, size_t *n)
{
	unsigned errors = p->errors;
	int r = bm_px_seq(p, v);

	if (r != 1)
		return r;
	for (size_t i = 0; i < v->n; i++) {
		size_t m = bm_px_push_idx(p, i);
		const char *s;

		if (bm_px_str(p, v->kids[i], &s) == 1) {
			char **slot = bm_px_grow(p, out, n, sizeof(**out));

			if (slot)
				*slot = bm_px_strdup(p, s);
		}
		bm_px_pop(p, m);
	}
	return p->errors == errors ? 1 : -1;
}

int bm_px_fstrs(struct bm_px *p, const struct bm_ynode *map, const char *key, char ***out,
		size_t *n)
{
	FIELD(p, map, key, strs(p, v, out, n));
}

void bm_px_unknown(struct bm_px *p, const struct bm_ynode *map, const char *const *known)
{
	if (!map || map->type != BM_Y_MAP)
		return;
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct bm_ynode *k = map->kids[i];

		if (bm_y_is_null(map->kids[i + 1]) || bm_cfg_one_of(k->str, known))
			continue;
		size_t m = bm_px_push(p, k->str);

		bm_px_unsup(p, k->line, NULL);
		bm_px_pop(p, m);
	}
}

void bm_px_export_to(struct bm_px *p, const struct bm_ynode *spec)
{
	const struct bm_ynode *v = NULL;
	unsigned errors = p->errors;
	size_t m;

	if (bm_px_fseq(p, spec, "exportTo", &v) != 1)
		return;
	m = bm_px_push(p, "exportTo");
	for (size_t i = 0; i < v->n; i++) {
		size_t mi = bm_px_push_idx(p, i);
		const char *s;

		bm_px_str(p, v->kids[i], &s);
		bm_px_pop(p, mi);
	}
	if (p->errors == errors && !(v->n == 1 && !strcmp(v->kids[0]->str, "*")))
		bm_px_unsup(p, bm_px_key_line(spec, "exportTo"), NULL);
	bm_px_pop(p, m);
}

/* ---- memory and metadata ---- */

void *bm_cfg_grow(void *arr_ptr, size_t *n, size_t sz)
{
	char *base;

	/* arr_ptr is the address of some "T *": read and write it as bytes, not through a void *. */
	memcpy(&base, arr_ptr, sizeof(base));
	/* Capacity is 4 for n in 1..4, then the power of two >= n: grow at 0, 4, 8, 16, ... */
	if (*n == 0 || (*n >= 4 && !(*n & (*n - 1)))) {
		size_t cap = *n ? *n * 2 : 4;
		char *nb;

		if (cap > SIZE_MAX / sz)
			return NULL;
		nb = realloc(base, cap * sz);
		if (!nb)
			return NULL;
		base = nb;
		memcpy(arr_ptr, &base, sizeof(base));
	}
	memset(base + *n * sz, 0, sz);
	return base + (*n)++ * sz;
}

void *bm_px_grow(struct bm_px *p, void *arr_ptr, size_t *n, size_t sz)
{
	void *slot = bm_cfg_grow(arr_ptr, n, sz);

	if (!slot)
		bm_px_oom(p, 0);
	return slot;
}

char *bm_px_strdup(struct bm_px *p, const char *s)
{
	char *d = strdup(s);

	if (!d)
		bm_px_oom(p, 0);
	return d;
}

void bm_cfg_meta_free(struct bm_meta *m)
{
	free(m->name);
	free(m->ns);
	free(m->uid);
	bm_cfg_labels_free(&m->labels);
}

int bm_px_meta(struct bm_px *p, const struct bm_ynode *root, struct bm_meta *m,
	       enum bm_name_rule rule, bool cluster_scoped)
{
	const struct bm_ynode *md = NULL;
	unsigned errors = p->errors;
	size_t mark;
	int r;

	m->loc.file = p->file;
	m->loc.line = root->line;
	r = bm_px_fmap(p, root, "metadata", &md);
	if (r == 0)
		bm_px_missing(p, root->line, "metadata");
	if (r != 1)
		return -1;
	mark = bm_px_push(p, "metadata");
	r = bm_px_fdup(p, md, "name", &m->name);
	if (r == 0)
		bm_px_missing(p, md->line, "name");
	if (r == 1) {
		p->name = m->name;
		static const char *const what[] = {
			[BM_NAME_SUBDOMAIN] = "RFC 1123 subdomain: [a-z0-9-.], at most 253",
			[BM_NAME_LABEL] = "RFC 1123 label: [a-z0-9-], at most 63",
			[BM_NAME_1035] = "RFC 1035 label: [a-z0-9-], a letter first, at most 63",
		};
		bool ok = rule == BM_NAME_SUBDOMAIN ? bm_cfg_is_dns_subdomain(m->name) :
			  rule == BM_NAME_LABEL	    ? bm_cfg_is_dns_label(m->name) :
						      bm_cfg_is_dns1035_label(m->name);

		if (!ok)
			bm_px_ferr(p, md, "name", "\"%.64s\" is not a valid name (lowercase %s)",
				   m->name, what[rule]);
	}
	if (cluster_scoped) {
		m->ns = bm_px_strdup(p, "");
	} else {
		r = bm_px_fdup(p, md, "namespace", &m->ns);
		if (r == 1 && !bm_cfg_is_dns_label(m->ns))
			bm_px_ferr(p, md, "namespace",
				  "\"%.64s\" is not a valid namespace name (lowercase RFC 1123 "
				  "label: [a-z0-9-], at most 63)",
				  m->ns);
		if (r == 0)
			m->ns = bm_px_strdup(p, "default");
	}
	p->ns = m->ns;
	bm_px_flabels(p, md, "labels", &m->labels);
	bm_px_fdup(p, md, "uid", &m->uid);
	bm_px_pop(p, mark);
	if (p->errors != errors)
		return -1;
	return bm_cfg_register(p, root->line);
}
