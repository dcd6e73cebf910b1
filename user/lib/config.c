/* The config loader's entry points: directory, file and buffer loading, dispatch of each YAML
 * document by apiVersion/kind, the diagnostics list, the duplicate check, and freeing. */
#include "config_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- diagnostics ---- */

void bm_cfg_diag_raw(struct bm_config *c, enum bm_diag_level lvl, const char *file, int line,
		     const char *msg)
{
	struct bm_diag *d;

	if (lvl == BM_DIAG_ERROR)
		c->n_errors++;
	if (c->n_diags >= BM_CONFIG_MAX_DIAGS)
		return;
	if (c->n_diags == BM_CONFIG_MAX_DIAGS - 1) {
		lvl = BM_DIAG_WARNING;
		msg = "warning: too many diagnostics: the rest are counted, not shown";
		file = NULL;
		line = 0;
	}
	d = bm_cfg_grow(&c->diags, &c->n_diags, sizeof(*c->diags));
	if (!d)
		return; /* the error is still counted: the config will not be applied */
	d->level = lvl;
	d->loc.file = file;
	d->loc.line = line;
	d->msg = strdup(msg);
	if (!d->msg) {
		c->n_diags--;
		return;
	}
	/* One diagnostic is one line: no control characters from file names or values. */
	for (char *s = d->msg; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

void bm_config_diag(struct bm_config *c, enum bm_diag_level lvl, const struct bm_loc *loc,
		    const char *fmt, ...)
{
	char text[1024], msg[2048];
	bool at = loc && loc->file;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (lvl == BM_DIAG_UNSUPPORTED) {
		if (at)
			snprintf(msg, sizeof(msg), "unsupported: %s at %s:%d", text, loc->file,
				 loc->line);
		else
			snprintf(msg, sizeof(msg), "unsupported: %s", text);
	} else {
		const char *pre = lvl == BM_DIAG_ERROR ? "error" : "warning";

		if (at)
			snprintf(msg, sizeof(msg), "%s: %s:%d: %s", pre, loc->file, loc->line, text);
		else
			snprintf(msg, sizeof(msg), "%s: %s", pre, text);
	}
	bm_cfg_diag_raw(c, lvl, loc ? loc->file : NULL, loc ? loc->line : 0, msg);
}

void bm_config_print_diags(const struct bm_config *c, FILE *fp)
{
	for (size_t i = 0; i < c->n_diags; i++)
		fprintf(fp, "%s\n", c->diags[i].msg);
}

/* ---- duplicate check: an open-addressing set of "Kind/ns/name" ---- */

struct seen_ent {
	char *key;
	const char *file;
	int line;
};

struct bm_config_seen {
	struct seen_ent *v;
	size_t cap, n; /* cap is a power of two, kept at most half full */
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct seen_ent *seen_slot(struct seen_ent *v, size_t cap, const char *key)
{
	size_t i = hash_str(key) & (cap - 1);

	while (v[i].key && strcmp(v[i].key, key))
		i = (i + 1) & (cap - 1);
	return &v[i];
}

static int seen_grow(struct bm_config_seen *s)
{
	size_t cap = s->cap ? s->cap * 2 : 64;
	struct seen_ent *v = calloc(cap, sizeof(*v));

	if (!v)
		return -1;
	for (size_t i = 0; i < s->cap; i++)
		if (s->v[i].key)
			*seen_slot(v, cap, s->v[i].key) = s->v[i];
	free(s->v);
	s->v = v;
	s->cap = cap;
	return 0;
}

int bm_cfg_register(struct bm_px *p, int line)
{
	struct bm_config_seen *s = p->c->seen;
	struct seen_ent *e;
	char *key;

	if (asprintf(&key, "%s/%s/%s", p->kind, p->ns, p->name) < 0) {
		bm_px_oom(p, line);
		return -1;
	}
	if ((s->n + 1) * 2 > s->cap && seen_grow(s)) {
		free(key);
		bm_px_oom(p, line);
		return -1;
	}
	e = seen_slot(s->v, s->cap, key);
	if (e->key) {
		free(key);
		bm_px_err(p, line, "defined twice (first at %s:%d)", e->file, e->line);
		return -1;
	}
	e->key = key;
	e->file = p->file;
	e->line = line;
	s->n++;
	return 0;
}

/* ---- dispatch by apiVersion and kind ---- */

enum act {
	ACT_PARSE,   /* a kind the model holds */
	ACT_ACCEPT,  /* valid, nothing to keep (ServiceAccount) */
	ACT_IGNORE,  /* a warning: not read by the mesh */
	ACT_UNSUP,   /* a kind the mesh should honour but cannot yet */
	ACT_LIST,    /* v1 List: every item is a document */
};

struct kind_ent {
	const char *group;            /* "" for the core group */
	const char *const *versions;  /* NULL: any */
	const char *kind;             /* NULL: any kind of the group */
	enum act act;
	void (*parse)(struct bm_px *p, const struct bm_ynode *root);
};

static const char *const v_core[] = { "v1", NULL };
static const char *const v_slice[] = { "v1", "v1beta1", NULL };
static const char *const v_istio[] = { "v1alpha3", "v1beta1", "v1", NULL };

static const struct kind_ent kinds[] = {
	{ "", v_core, "Namespace", ACT_PARSE, bm_cfg_namespace },
	{ "", v_core, "Service", ACT_PARSE, bm_cfg_service },
	{ "", v_core, "Pod", ACT_PARSE, bm_cfg_pod },
	{ "", v_core, "Endpoints", ACT_PARSE, bm_cfg_endpoints },
	{ "", v_core, "ServiceAccount", ACT_ACCEPT, NULL },
	{ "", v_core, "ConfigMap", ACT_PARSE, bm_cfg_configmap },
	{ "", v_core, "Secret", ACT_UNSUP, NULL },
	{ "", v_core, "List", ACT_LIST, NULL },
	{ "discovery.k8s.io", v_slice, "EndpointSlice", ACT_PARSE, bm_cfg_endpoint_slice },
	{ "apps", v_core, "Deployment", ACT_IGNORE, NULL },
	{ "apps", v_core, "ReplicaSet", ACT_IGNORE, NULL },
	{ "apps", v_core, "StatefulSet", ACT_IGNORE, NULL },
	{ "apps", v_core, "DaemonSet", ACT_IGNORE, NULL },
	{ "batch", v_core, "Job", ACT_IGNORE, NULL },
	{ "batch", v_core, "CronJob", ACT_IGNORE, NULL },
	{ "networking.istio.io", v_istio, "VirtualService", ACT_PARSE, bm_cfg_virtual_service },
	{ "networking.istio.io", v_istio, "DestinationRule", ACT_PARSE, bm_cfg_destination_rule },
	{ "networking.istio.io", v_istio, "ServiceEntry", ACT_PARSE, bm_cfg_service_entry },
	{ "networking.istio.io", v_istio, "WorkloadEntry", ACT_PARSE, bm_cfg_workload_entry },
	{ "networking.istio.io", v_istio, "Gateway", ACT_UNSUP, NULL },
	{ "networking.istio.io", v_istio, "Sidecar", ACT_UNSUP, NULL },
	{ "networking.istio.io", v_istio, "EnvoyFilter", ACT_UNSUP, NULL },
	{ "networking.istio.io", v_istio, "WorkloadGroup", ACT_UNSUP, NULL },
	{ "networking.istio.io", v_istio, "ProxyConfig", ACT_UNSUP, NULL },
	{ "security.istio.io", NULL, NULL, ACT_UNSUP, NULL },
	{ "telemetry.istio.io", NULL, NULL, ACT_UNSUP, NULL },
};

static const struct kind_ent *find_kind(const char *api_version, const char *kind)
{
	const char *slash = strchr(api_version, '/');
	const char *version = slash ? slash + 1 : api_version;
	size_t glen = slash ? (size_t)(slash - api_version) : 0;

	if (strchr(version, '/'))
		return NULL;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const struct kind_ent *k = &kinds[i];
		bool vok = !k->versions;

		if (strlen(k->group) != glen || strncmp(k->group, api_version, glen))
			continue;
		for (const char *const *v = k->versions; v && *v; v++)
			vok |= !strcmp(*v, version);
		if (vok && (!k->kind || !strcmp(k->kind, kind)))
			return k;
	}
	return NULL;
}

static void kind_diag(struct bm_px *p, int line, const char *api_version, const char *kind,
		      const struct kind_ent *k)
{
	char msg[2048];

	/* A kind we know by name is shown alone; an unknown one with its apiVersion. */
	snprintf(msg, sizeof(msg), "unsupported: %.100s%s%.100s at %s:%d (kind not supported yet)",
		 k ? "" : api_version, k ? "" : " ", kind, p->file, line);
	bm_cfg_diag_raw(p->c, BM_DIAG_UNSUPPORTED, p->file, line, msg);
}

/* Ignored kinds are not validated: their name is shown as far as it can be read. */
static void ignored(struct bm_px *p, const struct bm_ynode *root, int line, const char *kind)
{
	const struct bm_ynode *md = bm_y_get(root, "metadata");
	const char *name = bm_y_str(bm_y_get(md, "name"));
	const char *ns = bm_y_str(bm_y_get(md, "namespace"));
	const char *why = !strcmp(kind, "ConfigMap") ? "the mesh does not read ConfigMaps" :
						       "the mesh reads Pod objects";
	char msg[2048];

	snprintf(msg, sizeof(msg), "warning: %s:%d: %s %.64s/%.64s ignored: %s", p->file, line, kind,
		 ns && *ns ? ns : "default", name && *name ? name : "(unnamed)", why);
	bm_cfg_diag_raw(p->c, BM_DIAG_WARNING, p->file, line, msg);
}

static void load_doc(struct bm_config *c, const char *file, const struct bm_ynode *root,
		     bool in_list);

static void load_list(struct bm_px *p, const struct bm_ynode *root, bool in_list)
{
	static const char *const known[] = { "apiVersion", "kind", "metadata", "items", NULL };
	const struct bm_ynode *items = NULL;

	if (in_list) {
		bm_px_err(p, root->line, "a List inside a List is not supported");
		return;
	}
	bm_px_unknown(p, root, known);
	if (bm_px_fseq(p, root, "items", &items) != 1)
		return;
	for (size_t i = 0; i < items->n; i++)
		load_doc(p->c, p->file, items->kids[i], true);
}

static void load_doc(struct bm_config *c, const char *file, const struct bm_ynode *root,
		     bool in_list)
{
	struct bm_px p = { .c = c, .file = file };
	const char *api_version = NULL, *kind = NULL;
	const struct kind_ent *k;
	int rk, rv, kline;

	if (bm_y_is_null(root))
		return; /* an empty document (or a null List item) */
	if (root->type != BM_Y_MAP) {
		bm_px_err(&p, root->line, "a resource must be a map with apiVersion and kind, not %s",
			  root->type == BM_Y_SEQ ? "a list" : "a scalar");
		return;
	}
	rk = bm_px_fstr(&p, root, "kind", &kind);
	if (rk == 1 && !kind[0])
		rk = 0; /* kind: "" */
	if (rk == 1)
		p.kind = kind;
	rv = bm_px_fstr(&p, root, "apiVersion", &api_version);
	if (rv == 1 && !api_version[0])
		rv = 0;
	if (rv == 0)
		bm_px_missing(&p, root->line, "apiVersion");
	if (rk == 0)
		bm_px_missing(&p, root->line, "kind");
	if (rk != 1 || rv != 1)
		return;
	kline = bm_px_val(root, "kind")->line;
	k = find_kind(api_version, kind);
	if (!k || k->act == ACT_UNSUP) {
		kind_diag(&p, kline, api_version, kind, k);
		return;
	}
	switch (k->act) {
	case ACT_PARSE:
		k->parse(&p, root);
		break;
	case ACT_ACCEPT: {
		struct bm_meta m = { 0 };

		bm_px_meta(&p, root, &m, BM_NAME_SUBDOMAIN, false);
		bm_cfg_meta_free(&m);
		break;
	}
	case ACT_IGNORE:
		ignored(&p, root, kline, kind);
		break;
	case ACT_LIST:
		load_list(&p, root, in_list);
		break;
	case ACT_UNSUP:
		break;
	}
}

/* ---- loading ---- */

static const char *intern_file(struct bm_config *c, const char *name)
{
	char **slot;
	char *copy = strdup(name);

	if (!copy)
		return NULL;
	slot = bm_cfg_grow(&c->files, &c->n_files, sizeof(*c->files));
	if (!slot) {
		free(copy);
		return NULL;
	}
	*slot = copy;
	return copy;
}

int bm_config_load_buf(struct bm_config *c, const char *name, const char *buf, size_t len)
{
	const char *file = intern_file(c, name);
	struct bm_yfile yf;
	char err[1536];

	if (!file) {
		bm_config_diag(c, BM_DIAG_ERROR, NULL, "%s: out of memory", name);
		return -1;
	}
	if (bm_yaml_parse(file, buf, len, &yf, err, sizeof(err))) {
		/* ytree writes "<file>:<line>: <what>" (or "<file>: <what>"). */
		size_t flen = strlen(file);
		int line = 0;

		if (!strncmp(err, file, flen) && err[flen] == ':')
			line = atoi(err + flen + 1);
		char msg[sizeof(err) + 8];

		snprintf(msg, sizeof(msg), "error: %s", err);
		bm_cfg_diag_raw(c, BM_DIAG_ERROR, file, line, msg);
		return 0;
	}
	for (size_t i = 0; i < yf.n_docs; i++)
		load_doc(c, file, yf.docs[i].root, false);
	bm_yaml_free(&yf);
	return 0;
}

int bm_config_load_file(struct bm_config *c, const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t len;
	int rc = -1;

	if (!fp) {
		bm_config_diag(c, BM_DIAG_ERROR, NULL, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	/* One byte over the limit is enough for the parser to say the file is too large. */
	buf = malloc(BM_YAML_MAX_FILE + 1);
	if (!buf) {
		bm_config_diag(c, BM_DIAG_ERROR, NULL, "%s: out of memory", path);
		goto cleanup;
	}
	len = fread(buf, 1, BM_YAML_MAX_FILE + 1, fp);
	if (ferror(fp)) {
		bm_config_diag(c, BM_DIAG_ERROR, NULL, "%s: read: %s", path, strerror(errno));
		goto cleanup;
	}
	rc = bm_config_load_buf(c, path, buf, len);
cleanup:
	free(buf);
	fclose(fp);
	return rc;
}

bool bm_config_yaml_name(const char *n)
{
	size_t len = strlen(n);

	if (n[0] == '.')
		return false;
	return (len > 5 && !strcmp(n + len - 5, ".yaml")) || (len > 4 && !strcmp(n + len - 4, ".yml"));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int bm_config_load_dir(struct bm_config *c, const char *dir)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	int rc = 0;

	if (!d) {
		bm_config_diag(c, BM_DIAG_ERROR, NULL, "%s: cannot read the directory: %s", dir,
			       strerror(errno));
		return -1;
	}
	errno = 0;
	while ((de = readdir(d))) {
		char **slot;

		if (!bm_config_yaml_name(de->d_name))
			continue;
		slot = bm_cfg_grow(&names, &n, sizeof(*names));
		if (!slot || !(*slot = strdup(de->d_name))) {
			if (slot)
				n--;
			bm_config_diag(c, BM_DIAG_ERROR, NULL, "%s: out of memory", dir);
			rc = -1;
			goto cleanup;
		}
		errno = 0;
	}
	if (errno) {
		bm_config_diag(c, BM_DIAG_ERROR, NULL, "%s: cannot read the directory: %s", dir,
			       strerror(errno));
		rc = -1;
		goto cleanup;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		size_t dlen = strlen(dir);
		struct stat st;
		char *path;

		if (asprintf(&path, "%s%s%s", dir, dlen && dir[dlen - 1] == '/' ? "" : "/",
			     names[i]) < 0) {
			bm_config_diag(c, BM_DIAG_ERROR, NULL, "%s: out of memory", dir);
			continue;
		}
		/* Not recursive: a directory called x.yaml is skipped; anything else that cannot
		 * be read is an error in that file (load_file says so). */
		if (stat(path, &st) || !S_ISDIR(st.st_mode))
			bm_config_load_file(c, path);
		free(path);
	}
cleanup:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

/* ---- lifetime ---- */

struct bm_config *bm_config_new(void)
{
	struct bm_config *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->seen = calloc(1, sizeof(*c->seen));
	if (!c->seen) {
		free(c);
		return NULL;
	}
	return c;
}

#define FREE_ARRAY(arr, n, fn)                   \
	do {                                     \
		for (size_t i_ = 0; i_ < (n); i_++) \
			fn(&(arr)[i_]);          \
		free(arr);                       \
	} while (0)

#define SHRINK(arr, n)                                                        \
	do {                                                                  \
		if ((n)) {                                                    \
			void *p_ = realloc((arr), (n) * sizeof(*(arr)));      \
			if (p_)                                               \
				(arr) = p_;                                   \
		}                                                             \
	} while (0)

void bm_config_compact(struct bm_config *c)
{
	if (c->seen) {
		for (size_t i = 0; i < c->seen->cap; i++)
			free(c->seen->v[i].key);
		free(c->seen->v);
		free(c->seen);
		c->seen = NULL;
	}
	SHRINK(c->namespaces, c->n_namespaces);
	SHRINK(c->services, c->n_services);
	SHRINK(c->pods, c->n_pods);
	SHRINK(c->endpoints, c->n_endpoints);
	SHRINK(c->service_entries, c->n_service_entries);
	SHRINK(c->workload_entries, c->n_workload_entries);
	SHRINK(c->destination_rules, c->n_destination_rules);
	SHRINK(c->virtual_services, c->n_virtual_services);
	/* diags and files stay as they are: bm_cfg_grow may still add to them and assumes its
	 * own capacities. */
}

void bm_config_free(struct bm_config *c)
{
	if (!c)
		return;
	if (c->borrowed) {
		if (c->seen) {
			free(c->seen->v);
			free(c->seen);
		}
		free(c->namespaces);
		free(c->services);
		free(c->pods);
		free(c->endpoints);
		free(c->service_entries);
		free(c->workload_entries);
		free(c->destination_rules);
		free(c->virtual_services);
		for (size_t i = 0; i < c->n_diags; i++)
			free(c->diags[i].msg);
		free(c->diags);
		free(c->files);
		free(c);
		return;
	}
	FREE_ARRAY(c->namespaces, c->n_namespaces, bm_cfg_namespace_free);
	FREE_ARRAY(c->services, c->n_services, bm_cfg_service_free);
	FREE_ARRAY(c->pods, c->n_pods, bm_cfg_pod_free);
	FREE_ARRAY(c->endpoints, c->n_endpoints, bm_cfg_endpoints_free);
	FREE_ARRAY(c->service_entries, c->n_service_entries, bm_cfg_service_entry_free);
	FREE_ARRAY(c->workload_entries, c->n_workload_entries, bm_cfg_workload_entry_free);
	FREE_ARRAY(c->destination_rules, c->n_destination_rules, bm_cfg_destination_rule_free);
	FREE_ARRAY(c->virtual_services, c->n_virtual_services, bm_cfg_virtual_service_free);
	for (size_t i = 0; i < c->n_diags; i++)
		free(c->diags[i].msg);
	free(c->diags);
	for (size_t i = 0; i < c->n_files; i++)
		free(c->files[i]);
	free(c->files);
	if (c->seen) {
		for (size_t i = 0; i < c->seen->cap; i++)
			free(c->seen->v[i].key);
		free(c->seen->v);
		free(c->seen);
	}
	free(c);
}
