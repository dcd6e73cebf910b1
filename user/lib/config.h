/* The config loader: YAML manifests (Kubernetes and Istio resources) into the typed model of
 * model.h, with strict validation and file:line diagnostics. Reference: docs/config.md. */
#ifndef BM_CONFIG_H
#define BM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "model.h"

/* Stored diagnostics are capped (the count of errors is not): past this, one last line says how
 * many more were dropped. */
#define BM_CONFIG_MAX_DIAGS 10000

/* An empty config; NULL when out of memory. */
struct bm_config *bm_config_new(void);

/* Every *.yaml / *.yml in dir (not recursive, sorted by name, dotfiles skipped). Returns 0, or -1
 * only when the directory itself cannot be read (then also an ERROR diag). Parse and validation
 * problems are diags. Diagnostics name the file as "<dir>/<entry>". */
int bm_config_load_dir(struct bm_config *c, const char *dir);
/* One file; 0, or -1 when it cannot be read (then also an ERROR diag). */
int bm_config_load_file(struct bm_config *c, const char *path);
/* A buffer (need not be NUL-terminated) as if it were the file called name. Returns 0; -1 only
 * when out of memory before anything could be recorded. */
int bm_config_load_buf(struct bm_config *c, const char *name, const char *buf, size_t len);
void bm_config_free(struct bm_config *c);

/* Done loading into c: drop the duplicate registry and the arrays' slack (a config kept for
 * long, one per file, by the cache). c must not be loaded into again. */
void bm_config_compact(struct bm_config *c);

/* A config file name the loader reads: *.yaml or *.yml, not a dotfile. */
bool bm_config_yaml_name(const char *name);

/* A directory loaded file by file, each file parsed again only when it changed (inode, size,
 * mtime or ctime). */
struct bm_config_cache;
struct bm_config_cache *bm_config_cache_new(void);
/* The whole directory as one config, as bm_config_load_dir gives it (resources in file order,
 * duplicates across files reported). It borrows from the cache: free it (bm_config_free)
 * before the next load. *reparsed: files parsed this time. NULL when out of memory. */
struct bm_config *bm_config_cache_load(struct bm_config_cache *cc, const char *dir,
				       size_t *reparsed);
void bm_config_cache_free(struct bm_config_cache *cc);
/* File name changed (inotify): the next load parses it again without reading the rest of the
 * directory. NULL: read the whole directory next time (events were lost, or on a timer). */
void bm_config_cache_touch(struct bm_config_cache *cc, const char *name);
/* Keep the parses the last load's view borrows from alive past later loads, for as long as
 * something built on that view lives (the agent's HTTP router). Take it right after the load;
 * NULL when out of memory. */
struct bm_config_pin;
struct bm_config_pin *bm_config_cache_pin(struct bm_config_cache *cc);
void bm_config_pin_free(struct bm_config_pin *p);

/* Add a diagnostic; ERROR also counts in c->n_errors. With loc (and loc->file) set, the location
 * is written in the standard place: "error: <file>:<line>: <fmt>", "warning: <file>:<line>: <fmt>",
 * "unsupported: <fmt> at <file>:<line>"; with loc NULL just the prefix and fmt. So for a
 * cross-resource check: bm_config_diag(c, BM_DIAG_ERROR, &vs->meta.loc,
 * "VirtualService %s/%s: ...", ...). Control characters in the text are replaced by '?'. */
void bm_config_diag(struct bm_config *c, enum bm_diag_level lvl, const struct bm_loc *loc,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* One line each, in order, with the "error: " / "unsupported: " / "warning: " prefix. */
void bm_config_print_diags(const struct bm_config *c, FILE *fp);

/* IPv4 is stored v4-mapped (::ffff:a.b.c.d). 0, or -1 when s is not an address. */
int bm_ip_parse(const char *s, struct bm_ip *out);
/* v4-mapped printed as a.b.c.d; always NUL-terminates when len > 0. */
void bm_ip_format(const struct bm_ip *ip, char *buf, size_t len);
bool bm_ip_is_v4(const struct bm_ip *ip);

/* True when every key=value of selector is in labels (an empty selector matches everything). */
bool bm_labels_match(const struct bm_labels *selector, const struct bm_labels *labels);
/* Value for key, or NULL. */
const char *bm_labels_get(const struct bm_labels *l, const char *key);

#endif
