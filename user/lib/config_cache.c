/* A config directory loaded file by file: each file's parse is kept and redone only when the
 * file changed, and the directory is presented as one config that borrows their resources. */
#include <dirent.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "blobtab.h"
#include "config.h"

/* A file's parse, shared by the cache and the pins (bm_config_cache_pin) that still use it. */
struct cfg_ref {
	struct bm_config *cfg;
	unsigned refs;
};

struct cached_file {
	char *name;              /* entry name in the directory */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	struct bm_config *cfg;   /* that file alone (ref->cfg) */
	struct cfg_ref *ref;
	int seen;                /* still in the directory at the last load */
};

struct bm_config_cache {
	struct cached_file *v;
	size_t n, cap;
	struct bm_blobtab by_name; /* entry name -> index in v */
	struct bm_blobtab dirty;   /* names changed since the last load (bm_config_cache_touch) */
	int membership;            /* a file came or went: order and index must be redone */
	int full;                  /* the next load reads the whole directory */
};

struct bm_config_cache *bm_config_cache_new(void)
{
	struct bm_config_cache *cc = calloc(1, sizeof(*cc));

	if (cc)
		cc->full = 1;
	return cc;
}

void bm_config_cache_touch(struct bm_config_cache *cc, const char *name)
{
	if (!name) {
		cc->full = 1;
		return;
	}
	if (!bm_blobtab_put(&cc->dirty, name, strlen(name), NULL))
		cc->full = 1; /* out of memory: fall back to reading everything */
}

static void unref(struct cfg_ref *r)
{
	if (r && !--r->refs) {
		bm_config_free(r->cfg);
		free(r);
	}
}

/* A new parse for f; the old one lives on while a pin holds it. 0 or -ENOMEM. */
static int fresh(struct cached_file *f)
{
	unref(f->ref);
	f->cfg = NULL;
	f->ref = calloc(1, sizeof(*f->ref));
	if (!f->ref)
		return -ENOMEM;
	f->ref->cfg = bm_config_new();
	if (!f->ref->cfg) {
		free(f->ref);
		f->ref = NULL;
		return -ENOMEM;
	}
	f->ref->refs = 1;
	f->cfg = f->ref->cfg;
	return 0;
}

static void drop(struct cached_file *f)
{
	unref(f->ref);
	free(f->name);
}

struct bm_config_pin {
	size_t n;
	struct cfg_ref *v[];
};

struct bm_config_pin *bm_config_cache_pin(struct bm_config_cache *cc)
{
	struct bm_config_pin *p = malloc(sizeof(*p) + cc->n * sizeof(p->v[0]));

	if (!p)
		return NULL;
	p->n = 0;
	for (size_t i = 0; i < cc->n; i++)
		if (cc->v[i].ref) {
			cc->v[i].ref->refs++;
			p->v[p->n++] = cc->v[i].ref;
		}
	return p;
}

void bm_config_pin_free(struct bm_config_pin *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		unref(p->v[i]);
	free(p);
}

void bm_config_cache_free(struct bm_config_cache *cc)
{
	if (!cc)
		return;
	for (size_t i = 0; i < cc->n; i++)
		drop(&cc->v[i]);
	free(cc->v);
	bm_blobtab_free(&cc->by_name);
	bm_blobtab_free(&cc->dirty);
	free(cc);
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct cached_file *)a)->name, ((const struct cached_file *)b)->name);
}

static struct cached_file *find(struct bm_config_cache *cc, const char *name)
{
	const struct bm_blob_ent *e = bm_blobtab_get(&cc->by_name, name, strlen(name));

	return e ? &cc->v[e->val] : NULL;
}

/* Index every entry by name (after the array moved or was sorted). */
static int reindex(struct bm_config_cache *cc)
{
	bm_blobtab_free(&cc->by_name);
	for (size_t i = 0; i < cc->n; i++) {
		struct bm_blob_ent *e = bm_blobtab_put(&cc->by_name, cc->v[i].name,
						       strlen(cc->v[i].name), NULL);

		if (!e)
			return -ENOMEM;
		e->val = i;
	}
	return 0;
}

static int same_stat(const struct cached_file *f, const struct stat *st)
{
	return f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size &&
	       f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       f->ctime.tv_sec == st->st_ctim.tv_sec && f->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* (Re)parse one file of the directory, or forget it when it is gone. 0 or -errno. */
static int reload_one(struct bm_config_cache *cc, const char *dir, const char *name,
		      size_t *reparsed)
{
	struct cached_file *f = find(cc, name);
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (stat(path, &st) || S_ISDIR(st.st_mode)) {
		if (f) {
			f->seen = 0; /* removed: dropped by the caller */
			cc->membership = 1;
		}
		return 0;
	}
	if (f && same_stat(f, &st) && f->cfg)
		return 0;
	if (!f) {
		if (cc->n == cc->cap) {
			size_t cap = cc->cap ? cc->cap * 2 : 64;
			struct cached_file *v = realloc(cc->v, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			cc->v = v;
			cc->cap = cap;
		}
		f = &cc->v[cc->n];
		memset(f, 0, sizeof(*f));
		f->name = strdup(name);
		struct bm_blob_ent *e = f->name ? bm_blobtab_put(&cc->by_name, f->name,
								 strlen(f->name), NULL) : NULL;

		if (!e) {
			free(f->name);
			return -ENOMEM;
		}
		e->val = cc->n++;
		cc->membership = 1;
	}
	f->seen = 1;
	if (fresh(f))
		return -ENOMEM;
	bm_config_load_file(f->cfg, path);
	bm_config_compact(f->cfg);
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->size = st.st_size;
	f->mtime = st.st_mtim;
	f->ctime = st.st_ctim;
	(*reparsed)++;
	return 0;
}

/* Drop the entries marked gone, restore name order, index again. */
static int settle(struct bm_config_cache *cc)
{
	size_t k = 0;

	for (size_t i = 0; i < cc->n; i++) {
		if (cc->v[i].seen)
			cc->v[k++] = cc->v[i];
		else
			drop(&cc->v[i]);
	}
	cc->n = k;
	if (cc->n > 1)
		qsort(cc->v, cc->n, sizeof(*cc->v), cmp_file);
	return reindex(cc);
}

/* Only the files named since the last load: no directory listing, no stat of the rest. */
static int refresh_dirty(struct bm_config_cache *cc, const char *dir, size_t *reparsed)
{
	int err = 0;

	for (size_t i = 0; i < cc->n; i++)
		cc->v[i].seen = 1;
	for (size_t i = 0; i < cc->dirty.cap && !err; i++) {
		const struct bm_blob_ent *e = &cc->dirty.v[i];
		char name[512];

		if (!bm_blob_live(e) || e->len >= sizeof(name))
			continue;
		memcpy(name, e->key, e->len);
		name[e->len] = '\0';
		if (!bm_config_yaml_name(name))
			continue;
		err = reload_one(cc, dir, name, reparsed);
	}
	bm_blobtab_free(&cc->dirty);
	if (!cc->membership)
		return err; /* files changed in place: order and index still hold */
	cc->membership = 0;
	return settle(cc) ? -ENOMEM : err;
}

/* Bring the cache in step with the whole directory. 0, or -errno when it cannot be read. */
static int refresh(struct bm_config_cache *cc, const char *dir, size_t *reparsed)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int err = 0;

	if (!d)
		return -errno;
	for (size_t i = 0; i < cc->n; i++)
		cc->v[i].seen = 0;
	while (!err && (de = readdir(d))) {
		struct cached_file *f;

		if (!bm_config_yaml_name(de->d_name))
			continue;
		err = reload_one(cc, dir, de->d_name, reparsed);
		f = find(cc, de->d_name);
		if (f && f->cfg)
			f->seen = 1; /* present (a directory or a vanished entry stays unseen) */
	}
	closedir(d);
	return settle(cc) ? -ENOMEM : err;
}

#define CONCAT(field, count, kindexpr)                                                      \
	do {                                                                                \
		size_t total_ = 0, at_ = 0;                                                 \
		for (size_t i_ = 0; i_ < cc->n; i_++)                                       \
			total_ += cc->v[i_].cfg->count;                                     \
		m->field = calloc(total_ ? total_ : 1, sizeof(*m->field));                  \
		if (!m->field)                                                              \
			goto oom;                                                           \
		for (size_t i_ = 0; i_ < cc->n; i_++) {                                     \
			const struct bm_config *p_ = cc->v[i_].cfg;                         \
			for (size_t j_ = 0; j_ < p_->count; j_++) {                         \
				const __typeof__(p_->field[0]) *el_ = &p_->field[j_];       \
				if (!dup_across(m, &seen, (kindexpr), i_, &el_->meta))      \
					m->field[at_++] = *el_;                             \
			}                                                                   \
		}                                                                           \
		m->count = at_;                                                             \
	} while (0)

/* A resource already seen in another file: an error, and the later one is left out, as the
 * loader does within one file. */
static int dup_across(struct bm_config *m, struct bm_blobtab *seen, const char *kind, size_t part,
		      const struct bm_meta *meta)
{
	char key[512];
	int created, n;
	struct bm_blob_ent *e;

	if (!meta->name)
		return 0; /* an inline ServiceEntry endpoint has no name of its own */
	{
		const char *ns = meta->ns ? meta->ns : "";
		size_t lk = strlen(kind), ln = strlen(ns), lm = strlen(meta->name);

		if (lk + ln + lm + 2 > sizeof(key))
			return 0;
		memcpy(key, kind, lk + 1);
		memcpy(key + lk + 1, ns, ln + 1);
		memcpy(key + lk + ln + 2, meta->name, lm);
		n = (int)(lk + ln + lm + 2);
	}
	e = bm_blobtab_put(seen, key, (size_t)n, &created);
	if (!e)
		return 0;
	if (created) {
		e->val = part;
		e->extra = (uint64_t)(uintptr_t)meta;
		return 0;
	}
	if (e->val == part)
		return 0; /* the same object several times in one file (Endpoints subsets) */
	const struct bm_meta *first = (const struct bm_meta *)(uintptr_t)e->extra;

	if (meta->ns && meta->ns[0])
		bm_config_diag(m, BM_DIAG_ERROR, &meta->loc,
			       "%s %s/%s: defined twice (first at %s:%d)", kind, meta->ns,
			       meta->name, first->loc.file, first->loc.line);
	else
		bm_config_diag(m, BM_DIAG_ERROR, &meta->loc, "%s %s: defined twice (first at %s:%d)",
			       kind, meta->name, first->loc.file, first->loc.line);
	return 1;
}

struct bm_config *bm_config_cache_load(struct bm_config_cache *cc, const char *dir,
				       size_t *reparsed)
{
	struct bm_config *m = bm_config_new();
	struct bm_blobtab seen = { 0 };
	size_t n_files = 0, n_diags = 0;
	int err;

	*reparsed = 0;
	if (!m)
		return NULL;
	m->borrowed = true;
	if (cc->full) {
		bm_blobtab_free(&cc->dirty);
		err = refresh(cc, dir, reparsed);
		cc->full = err != 0;
	} else {
		err = refresh_dirty(cc, dir, reparsed);
	}
	if (err) {
		bm_config_diag(m, BM_DIAG_ERROR, NULL, "%s: cannot read the directory: %s", dir,
			       strerror(-err));
		return m;
	}
	for (size_t i = 0; i < cc->n; i++) {
		n_files += cc->v[i].cfg->n_files;
		n_diags += cc->v[i].cfg->n_diags;
	}
	m->files = calloc(n_files ? n_files : 1, sizeof(*m->files));
	/* Later checks add diagnostics with bm_cfg_grow: give the array the capacity it assumes
	 * (4, then the power of two at or above the count). */
	size_t dcap = 4;

	while (dcap < n_diags)
		dcap *= 2;
	m->diags = calloc(dcap, sizeof(*m->diags));
	if (!m->files || !m->diags)
		goto oom;
	/* Each file's own diagnostics first, in file order; then what only the whole shows. */
	for (size_t i = 0; i < cc->n; i++) {
		const struct bm_config *p = cc->v[i].cfg;

		for (size_t j = 0; j < p->n_files; j++)
			m->files[m->n_files++] = p->files[j];
		for (size_t j = 0; j < p->n_diags; j++) {
			m->diags[m->n_diags] = p->diags[j];
			m->diags[m->n_diags].msg = strdup(p->diags[j].msg);
			if (!m->diags[m->n_diags].msg)
				goto oom;
			m->n_diags++;
		}
		m->n_errors += p->n_errors;
		if (p->mesh.loc.file && !m->mesh.loc.file)
			m->mesh = p->mesh;
	}
	CONCAT(namespaces, n_namespaces, "Namespace");
	CONCAT(services, n_services, "Service");
	CONCAT(pods, n_pods, "Pod");
	CONCAT(endpoints, n_endpoints, el_->is_slice ? "EndpointSlice" : "Endpoints");
	CONCAT(service_entries, n_service_entries, "ServiceEntry");
	CONCAT(workload_entries, n_workload_entries, "WorkloadEntry");
	CONCAT(destination_rules, n_destination_rules, "DestinationRule");
	CONCAT(virtual_services, n_virtual_services, "VirtualService");
	bm_blobtab_free(&seen);
	return m;
oom:
	bm_blobtab_free(&seen);
	bm_config_diag(m, BM_DIAG_ERROR, NULL, "%s: out of memory", dir);
	return m;
}
