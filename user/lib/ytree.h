/* YAML documents as a small tree with file:line on every node, built from libyaml events.
 * Bounded: file size, nesting depth, node count and alias expansion all have limits. */
#ifndef BM_YTREE_H
#define BM_YTREE_H

#include <stddef.h>
#include <stdio.h>

#define BM_YAML_MAX_FILE   (8u << 20)   /* bytes per file */
#define BM_YAML_MAX_DEPTH  64           /* nesting of maps and sequences */
#define BM_YAML_MAX_NODES  (1u << 20)   /* nodes per file, aliases counted expanded */

enum bm_ytype { BM_Y_SCALAR = 1, BM_Y_MAP, BM_Y_SEQ };

struct bm_ynode {
	enum bm_ytype type;
	int line;               /* 1-based line of the node's first character */
	int quoted;             /* scalar written with quotes or block style (never a number/bool) */
	char *str;              /* SCALAR: value, NUL-terminated */
	size_t len;             /* SCALAR: length of str */
	struct bm_ynode **kids; /* SEQ: items; MAP: key0, val0, key1, val1, ... */
	size_t n;               /* entries in kids */
	unsigned size;          /* nodes in this subtree, aliases expanded (bounds work) */
	unsigned height;        /* levels below this node (bounds recursion) */
};

struct bm_ydoc {
	struct bm_ynode *root;  /* NULL for an empty document */
	int line;               /* line where the document starts */
};

struct bm_yarena;

struct bm_yfile {
	char *path;
	struct bm_ydoc *docs;
	size_t n_docs;
	struct bm_yarena *arena; /* owns every node and string */
};

/* Parse a whole buffer; on error returns -1 and writes "path:line: what" into err. */
int bm_yaml_parse(const char *path, const char *buf, size_t len, struct bm_yfile *out,
		  char *err, size_t errlen);
int bm_yaml_load(const char *path, struct bm_yfile *out, char *err, size_t errlen);
void bm_yaml_free(struct bm_yfile *f);

/* Map lookup by key; NULL when absent or when map is not a map. */
const struct bm_ynode *bm_y_get(const struct bm_ynode *map, const char *key);
/* Scalar helpers: NULL/false when node is not a scalar. */
const char *bm_y_str(const struct bm_ynode *n);
int bm_y_is_null(const struct bm_ynode *n);

/* Emit one document as YAML text. Returns 0 or -1. */
int bm_yaml_emit(FILE *fp, const struct bm_ydoc *doc);

/* Allocate in a file's arena (for callers that add nodes before emitting). */
struct bm_ynode *bm_y_new(struct bm_yfile *f, enum bm_ytype type, int line);
struct bm_ynode *bm_y_scalar(struct bm_yfile *f, const char *s, int quoted);
int bm_y_append(struct bm_yfile *f, struct bm_ynode *parent, struct bm_ynode *kid);
/* Set key in map to val, replacing an existing value. */
int bm_y_set(struct bm_yfile *f, struct bm_ynode *map, const char *key, struct bm_ynode *val);

#endif
