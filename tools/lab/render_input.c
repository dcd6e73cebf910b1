/* bm-lab-render input: manifests (files, directories, stdin; multi-document; List kinds) turned
 * into objects with an identity (group, kind, namespace, name), and the store kept between runs. */
#include "lab_render.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Kinds without a namespace (the ones a mesh user is likely to apply). */
static const char *const cluster_scoped[] = {
	"Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
	"CustomResourceDefinition", "StorageClass", "PriorityClass", "IngressClass",
	"RuntimeClass", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
	"APIService", "GatewayClass",
};

static int valid_kind(const char *s)
{
	if (!*s || strlen(s) > 63)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
			return 0;
	return 1;
}

/* Object names: DNS subdomains for most kinds; RBAC allows ':' and some kinds uppercase. They
 * become file and netns names, so no '/', no leading '.', nothing outside this set. */
static int valid_name(const char *s)
{
	size_t len = strlen(s);

	if (!len || len > 253 || s[0] == '.' || s[0] == '-')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == ':' || *s == '_'))
			return 0;
	return 1;
}

/* Namespaces are DNS labels. */
static int valid_ns(const char *s)
{
	size_t len = strlen(s);

	if (!len || len > 63 || s[0] == '-' || s[len - 1] == '-')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
			return 0;
	return 1;
}

static int is_cluster_scoped(const char *kind)
{
	for (size_t i = 0; i < sizeof(cluster_scoped) / sizeof(cluster_scoped[0]); i++)
		if (!strcmp(kind, cluster_scoped[i]))
			return 1;
	return 0;
}

int lab_is(const struct lab_obj *o, const char *group, const char *kind)
{
	return !strcmp(o->group, group) && !strcmp(o->kind, kind);
}

static int obj_from_node(struct lab *l, struct bm_ynode *root, const char *path,
			 struct lab_obj *o, char *err)
{
	const struct bm_ynode *meta;
	const char *av, *kind, *name, *ns;

	memset(o, 0, sizeof(*o));
	o->path = path;
	o->line = root->line;
	o->root = root;
	o->group = o->ns = "";
	o->kind = o->name = "?";
	if (root->type != BM_Y_MAP)
		return lab_err(err, o, root, "a manifest must be a mapping");
	av = bm_y_str(bm_y_get(root, "apiVersion"));
	kind = bm_y_str(bm_y_get(root, "kind"));
	if (!av || !*av)
		return lab_err(err, o, root, "apiVersion is missing");
	if (!kind || !valid_kind(kind))
		return lab_err(err, o, bm_y_get(root, "kind"), "kind is missing or not a kind");
	o->kind = kind;
	const char *slash = strchr(av, '/');

	o->group = slash ? lab_fmt(l, "%.*s", (int)(slash - av), av) : "";
	meta = bm_y_get(root, "metadata");
	if (!meta || meta->type != BM_Y_MAP)
		return lab_err(err, o, root, "metadata is missing or not a mapping");
	name = bm_y_str(bm_y_get(meta, "name"));
	if (!name) {
		if (bm_y_get(meta, "generateName"))
			return lab_err(err, o, meta, "metadata.generateName is not supported: give a name");
		return lab_err(err, o, meta, "metadata.name is missing");
	}
	if (!valid_name(name))
		return lab_err(err, o, bm_y_get(meta, "name"), "metadata.name \"%.100s\" is not a valid name",
			       name);
	o->name = name;
	ns = bm_y_str(bm_y_get(meta, "namespace"));
	if (is_cluster_scoped(kind)) {
		o->ns = "";
	} else if (ns && *ns) {
		if (!valid_ns(ns))
			return lab_err(err, o, bm_y_get(meta, "namespace"),
				       "metadata.namespace \"%.100s\" is not a DNS label", ns);
		o->ns = ns;
	} else {
		o->ns = "default";
	}
	if (!strcmp(kind, "Namespace") && !valid_ns(name))
		return lab_err(err, o, bm_y_get(meta, "name"), "a Namespace name must be a DNS label");
	return 0;
}

static void push_obj(struct lab_obj **v, size_t *n, size_t *cap, const struct lab_obj *o)
{
	*v = lab_grow(*v, cap, *n, sizeof(**v));
	(*v)[(*n)++] = *o;
}

static struct bm_yfile *keep_file(struct lab *l)
{
	l->files = lab_grow(l->files, &l->cap_files, l->n_files, sizeof(*l->files));
	memset(&l->files[l->n_files], 0, sizeof(l->files[0]));
	return &l->files[l->n_files++];
}

/* Every document of one parsed file; v1 List (or any *List with items) is flattened. */
static int take_docs(struct lab *l, struct bm_yfile *f, const char *path, struct lab_obj **v,
		     size_t *n, size_t *cap, char *err)
{
	for (size_t d = 0; d < f->n_docs; d++) {
		struct bm_ynode *root = f->docs[d].root;
		struct lab_obj o;

		if (!root || bm_y_is_null(root))
			continue; /* empty document, e.g. after a trailing "---" */
		const char *kind = bm_y_str(bm_y_get(root, "kind"));
		const struct bm_ynode *items = bm_y_get(root, "items");
		size_t klen = kind ? strlen(kind) : 0;

		if (root->type == BM_Y_MAP && klen >= 4 && !strcmp(kind + klen - 4, "List") && items &&
		    items->type == BM_Y_SEQ) {
			for (size_t i = 0; i < items->n; i++) {
				if (obj_from_node(l, items->kids[i], path, &o, err))
					return -1;
				push_obj(v, n, cap, &o);
			}
			continue;
		}
		if (obj_from_node(l, root, path, &o, err))
			return -1;
		push_obj(v, n, cap, &o);
	}
	return 0;
}

static int load_file(struct lab *l, const char *path, struct lab_obj **v, size_t *n, size_t *cap,
		     char *err)
{
	struct bm_yfile *f = keep_file(l);
	char real[PATH_MAX];
	const char *shown = path;

	if (!strcmp(path, "-")) {
		size_t len = 0;
		char *buf = lab_read_file("/dev/stdin", &len);

		if (!buf) {
			snprintf(err, LAB_ERRLEN, "read stdin: %s", strerror(errno));
			return -1;
		}
		shown = "<stdin>";
		int r = bm_yaml_parse(shown, buf, len, f, err, LAB_ERRLEN);

		free(buf);
		if (r)
			return -1;
	} else {
		if (realpath(path, real))
			shown = lab_str(l, real);
		if (bm_yaml_load(shown, f, err, LAB_ERRLEN))
			return -1;
	}
	return take_docs(l, f, shown, v, n, cap, err);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int wanted_file(const char *name)
{
	size_t len = strlen(name);

	if (name[0] == '.')
		return 0;
	return (len > 5 && !strcmp(name + len - 5, ".yaml")) ||
	       (len > 4 && !strcmp(name + len - 4, ".yml")) ||
	       (len > 5 && !strcmp(name + len - 5, ".json"));
}

/* A directory: its *.yaml, *.yml and *.json files in name order, not recursive (as kubectl). */
static int load_dir(struct lab *l, const char *path, struct lab_obj **v, size_t *n, size_t *cap,
		    char *err)
{
	DIR *d = opendir(path);
	char **names = NULL;
	size_t n_names = 0, cap_names = 0;
	struct dirent *de;
	int rc = -1;

	if (!d) {
		snprintf(err, LAB_ERRLEN, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		if (!wanted_file(de->d_name))
			continue;
		names = lab_grow(names, &cap_names, n_names, sizeof(*names));
		names[n_names++] = (char *)lab_fmt(l, "%s/%s", path, de->d_name);
	}
	if (n_names)
		qsort(names, n_names, sizeof(*names), by_name);
	for (size_t i = 0; i < n_names; i++)
		if (load_file(l, names[i], v, n, cap, err))
			goto cleanup;
	rc = 0;
cleanup:
	free(names);
	closedir(d);
	return rc;
}

int lab_load_inputs(struct lab *l, char **paths, int np, struct lab_obj **out, size_t *n_out,
		    char *err)
{
	size_t cap = 0;

	*out = NULL;
	*n_out = 0;
	for (int i = 0; i < np; i++) {
		struct stat st;

		if (strcmp(paths[i], "-") && stat(paths[i], &st)) {
			snprintf(err, LAB_ERRLEN, "%s: %s", paths[i], strerror(errno));
			return -1;
		}
		if (strcmp(paths[i], "-") && S_ISDIR(st.st_mode)) {
			if (load_dir(l, paths[i], out, n_out, &cap, err))
				return -1;
		} else if (load_file(l, paths[i], out, n_out, &cap, err)) {
			return -1;
		}
	}
	return 0;
}

struct lab_obj *lab_find_obj(struct lab *l, const struct lab_obj *key)
{
	for (size_t i = 0; i < l->n_objs; i++) {
		struct lab_obj *o = &l->objs[i];

		if (!strcmp(o->group, key->group) && !strcmp(o->kind, key->kind) &&
		    !strcmp(o->ns, key->ns) && !strcmp(o->name, key->name))
			return o;
	}
	return NULL;
}

/* <state>/store.yaml: one document per object, {path, line, object}, in apply order. */
int lab_store_load(struct lab *l, char *err)
{
	const char *path = lab_fmt(l, "%s/store.yaml", l->state);
	struct bm_yfile *f;
	struct stat st;

	if (stat(path, &st) && errno == ENOENT)
		return 0;
	f = keep_file(l);
	if (bm_yaml_load(path, f, err, LAB_ERRLEN))
		return -1;
	for (size_t d = 0; d < f->n_docs; d++) {
		struct bm_ynode *root = f->docs[d].root;
		long line = 0;
		struct lab_obj o;

		if (!root || bm_y_is_null(root))
			continue;
		const char *src = bm_y_str(bm_y_get(root, "path"));
		struct bm_ynode *obj = (struct bm_ynode *)bm_y_get(root, "object");

		if (!src || !obj || lab_int(bm_y_get(root, "line"), 0, INT_MAX, &line)) {
			snprintf(err, LAB_ERRLEN, "%s:%d: damaged store entry", path, root->line);
			return -1;
		}
		if (obj_from_node(l, obj, src, &o, err))
			return -1;
		o.line = (int)line;
		push_obj(&l->objs, &l->n_objs, &l->cap_objs, &o);
	}
	return 0;
}

int lab_store_save(struct lab *l, char *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	int rc = -1;

	if (!fp)
		lab_die_oom();
	fputs("# bm-lab-render store: the objects as applied (do not edit)\n", fp);
	for (size_t i = 0; i < l->n_objs; i++) {
		const struct lab_obj *o = &l->objs[i];
		struct bm_ynode *m = lab_map(l);
		struct bm_ydoc doc = { .root = m };

		lab_set_str(l, m, "path", o->path, 1);
		lab_set_str(l, m, "line", lab_fmt(l, "%d", o->line), 0);
		lab_set(l, m, "object", o->root);
		if (bm_yaml_emit(fp, &doc)) {
			snprintf(err, LAB_ERRLEN, "emit the store entry of %s %s", o->kind, o->name);
			fclose(fp);
			goto cleanup;
		}
	}
	if (fclose(fp)) {
		snprintf(err, LAB_ERRLEN, "write the store: %s", strerror(errno));
		goto cleanup;
	}
	rc = lab_write_atomic(l->state, "store.yaml", buf, len, err);
cleanup:
	free(buf);
	return rc;
}
