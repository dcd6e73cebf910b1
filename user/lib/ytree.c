/* YAML documents as a small tree with file:line on every node, built from libyaml events.
 * Iterative (explicit stack), so hostile nesting cannot overflow the C stack. */
#include "ytree.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define ARENA_CHUNK (64u << 10)

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	char data[];
};

struct bm_yarena {
	struct arena_chunk *head;
};

static void *arena_alloc(struct bm_yarena *a, size_t sz)
{
	struct arena_chunk *c = a->head;

	sz = (sz + 15) & ~(size_t)15;
	if (!c || c->cap - c->used < sz) {
		size_t cap = sz > ARENA_CHUNK ? sz : ARENA_CHUNK;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->next = a->head;
		c->used = 0;
		c->cap = cap;
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += sz;
	memset(p, 0, sz);
	return p;
}

static char *arena_strdup(struct bm_yarena *a, const char *s, size_t len)
{
	char *p = arena_alloc(a, len + 1);

	if (p) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

static void arena_free(struct bm_yarena *a)
{
	if (!a)
		return;
	while (a->head) {
		struct arena_chunk *c = a->head;

		a->head = c->next;
		free(c);
	}
	free(a);
}

struct frame {
	struct bm_ynode *node;
	struct bm_ynode **kids;
	size_t n, cap;
};

struct anchor {
	char *name;
	struct bm_ynode *node;
};

struct builder {
	struct bm_yfile *f;
	struct frame stack[BM_YAML_MAX_DEPTH + 1];
	int depth;
	struct anchor *anchors;
	size_t n_anchors, cap_anchors;
	unsigned budget;           /* nodes so far in this file, aliases expanded */
	struct bm_ydoc *docs;
	size_t n_docs, cap_docs;
	struct bm_ynode *doc_root;
	int doc_line;
	char *err;
	size_t errlen;
	const char *path;
};

static int fail(struct builder *b, int line, const char *what)
{
	snprintf(b->err, b->errlen, "%s:%d: %s", b->path, line, what);
	return -1;
}

static int frame_push_kid(struct frame *fr, struct bm_ynode *kid)
{
	if (fr->n == fr->cap) {
		size_t cap = fr->cap ? fr->cap * 2 : 8;
		struct bm_ynode **k = realloc(fr->kids, cap * sizeof(*k));

		if (!k)
			return -1;
		fr->kids = k;
		fr->cap = cap;
	}
	fr->kids[fr->n++] = kid;
	return 0;
}

/* Attach a finished node to the open container (or make it the document root). */
static int add_node(struct builder *b, struct bm_ynode *node, int line)
{
	if (b->depth + (int)node->height > BM_YAML_MAX_DEPTH)
		return fail(b, line, "YAML nested too deeply");
	if (b->depth == 0) {
		b->doc_root = node;
		return 0;
	}
	struct frame *fr = &b->stack[b->depth - 1];

	if (frame_push_kid(fr, node))
		return fail(b, line, "out of memory");
	fr->node->size += node->size;
	if (fr->node->height < node->height + 1)
		fr->node->height = node->height + 1;
	return 0;
}

static int remember_anchor(struct builder *b, const yaml_char_t *name, struct bm_ynode *node)
{
	if (!name)
		return 0;
	if (b->n_anchors == b->cap_anchors) {
		size_t cap = b->cap_anchors ? b->cap_anchors * 2 : 8;
		struct anchor *a = realloc(b->anchors, cap * sizeof(*a));

		if (!a)
			return -1;
		b->anchors = a;
		b->cap_anchors = cap;
	}
	b->anchors[b->n_anchors].name = strdup((const char *)name);
	if (!b->anchors[b->n_anchors].name)
		return -1;
	b->anchors[b->n_anchors++].node = node;
	return 0;
}

static struct bm_ynode *find_anchor(struct builder *b, const yaml_char_t *name)
{
	for (size_t i = b->n_anchors; i-- > 0;)
		if (!strcmp(b->anchors[i].name, (const char *)name))
			return b->anchors[i].node;
	return NULL;
}

static void clear_anchors(struct builder *b)
{
	for (size_t i = 0; i < b->n_anchors; i++)
		free(b->anchors[i].name);
	b->n_anchors = 0;
}

static int count_node(struct builder *b, unsigned n, int line)
{
	if (n > BM_YAML_MAX_NODES || b->budget > BM_YAML_MAX_NODES - n)
		return fail(b, line, "YAML too large (node limit, aliases expanded)");
	b->budget += n;
	return 0;
}

static int on_event(struct builder *b, yaml_event_t *ev)
{
	struct bm_yarena *a = b->f->arena;
	int line = (int)ev->start_mark.line + 1;
	struct bm_ynode *n;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		b->doc_root = NULL;
		b->doc_line = line;
		return 0;
	case YAML_DOCUMENT_END_EVENT:
		if (b->n_docs == b->cap_docs) {
			size_t cap = b->cap_docs ? b->cap_docs * 2 : 4;
			struct bm_ydoc *d = realloc(b->docs, cap * sizeof(*d));

			if (!d)
				return fail(b, line, "out of memory");
			b->docs = d;
			b->cap_docs = cap;
		}
		b->docs[b->n_docs].root = b->doc_root;
		b->docs[b->n_docs].line = b->doc_line;
		b->n_docs++;
		clear_anchors(b);
		return 0;
	case YAML_SCALAR_EVENT:
		if (count_node(b, 1, line))
			return -1;
		n = arena_alloc(a, sizeof(*n));
		if (!n)
			return fail(b, line, "out of memory");
		n->type = BM_Y_SCALAR;
		n->line = line;
		n->size = 1;
		n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		n->str = arena_strdup(a, (const char *)ev->data.scalar.value, ev->data.scalar.length);
		if (!n->str)
			return fail(b, line, "out of memory");
		n->len = ev->data.scalar.length;
		if (memchr(n->str, '\0', n->len))
			return fail(b, line, "NUL byte in a YAML scalar");
		if (remember_anchor(b, ev->data.scalar.anchor, n))
			return fail(b, line, "out of memory");
		return add_node(b, n, line);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (b->depth >= BM_YAML_MAX_DEPTH)
			return fail(b, line, "YAML nested too deeply");
		if (count_node(b, 1, line))
			return -1;
		n = arena_alloc(a, sizeof(*n));
		if (!n)
			return fail(b, line, "out of memory");
		n->type = ev->type == YAML_SEQUENCE_START_EVENT ? BM_Y_SEQ : BM_Y_MAP;
		n->line = line;
		n->size = 1;
		if (remember_anchor(b, ev->type == YAML_SEQUENCE_START_EVENT ?
					       ev->data.sequence_start.anchor :
					       ev->data.mapping_start.anchor, n))
			return fail(b, line, "out of memory");
		b->stack[b->depth].node = n;
		b->stack[b->depth].kids = NULL;
		b->stack[b->depth].n = b->stack[b->depth].cap = 0;
		b->depth++;
		return 0;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT: {
		struct frame *fr = &b->stack[--b->depth];

		n = fr->node;
		n->n = fr->n;
		if (fr->n) {
			n->kids = arena_alloc(a, fr->n * sizeof(*n->kids));
			if (!n->kids) {
				free(fr->kids);
				return fail(b, line, "out of memory");
			}
			memcpy(n->kids, fr->kids, fr->n * sizeof(*n->kids));
		}
		free(fr->kids);
		fr->kids = NULL;
		if (n->type == BM_Y_MAP) {
			/* Duplicate keys are an error in YAML 1.2 and in kubectl. */
			for (size_t i = 0; i < n->n; i += 2) {
				const struct bm_ynode *k = n->kids[i];

				if (k->type != BM_Y_SCALAR)
					return fail(b, k->line, "mapping key is not a scalar");
				for (size_t j = 0; j < i; j += 2)
					if (!strcmp(n->kids[j]->str, k->str)) {
						char msg[160];

						snprintf(msg, sizeof(msg), "duplicate key \"%.100s\"", k->str);
						return fail(b, k->line, msg);
					}
			}
		}
		return add_node(b, n, line);
	}
	case YAML_ALIAS_EVENT:
		n = find_anchor(b, ev->data.alias.anchor);
		if (!n)
			return fail(b, line, "YAML alias to an unknown anchor");
		if (count_node(b, n->size, line))
			return -1;
		return add_node(b, n, line);
	default:
		return 0;
	}
}

int bm_yaml_parse(const char *path, const char *buf, size_t len, struct bm_yfile *out,
		  char *err, size_t errlen)
{
	struct builder b = { .f = out, .err = err, .errlen = errlen, .path = path };
	yaml_parser_t parser;
	yaml_event_t ev;
	int rc = -1, done = 0;

	memset(out, 0, sizeof(*out));
	if (len > BM_YAML_MAX_FILE) {
		snprintf(err, errlen, "%s: file larger than %u bytes", path, BM_YAML_MAX_FILE);
		return -1;
	}
	out->path = strdup(path);
	out->arena = calloc(1, sizeof(*out->arena));
	if (!out->path || !out->arena) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto cleanup_file;
	}
	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, errlen, "%s: cannot initialize the YAML parser", path);
		goto cleanup_file;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			snprintf(err, errlen, "%s:%zu: %s%s%s", path, parser.problem_mark.line + 1,
				 parser.problem ? parser.problem : "malformed YAML",
				 parser.context ? " " : "", parser.context ? parser.context : "");
			goto cleanup;
		}
		int r = on_event(&b, &ev);

		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
		if (r)
			goto cleanup;
	}
	out->docs = b.docs;
	out->n_docs = b.n_docs;
	b.docs = NULL;
	rc = 0;
cleanup:
	yaml_parser_delete(&parser);
	while (b.depth > 0)
		free(b.stack[--b.depth].kids);
	clear_anchors(&b);
	free(b.anchors);
	free(b.docs);
cleanup_file:
	if (rc)
		bm_yaml_free(out);
	return rc;
}

int bm_yaml_load(const char *path, struct bm_yfile *out, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	buf = malloc(BM_YAML_MAX_FILE + 1);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto cleanup;
	}
	len = fread(buf, 1, BM_YAML_MAX_FILE + 1, fp);
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: read: %s", path, strerror(errno));
		goto cleanup;
	}
	rc = bm_yaml_parse(path, buf, len, out, err, errlen);
cleanup:
	free(buf);
	fclose(fp);
	return rc;
}

void bm_yaml_free(struct bm_yfile *f)
{
	if (!f)
		return;
	free(f->path);
	free(f->docs);
	arena_free(f->arena);
	memset(f, 0, sizeof(*f));
}

const struct bm_ynode *bm_y_get(const struct bm_ynode *map, const char *key)
{
	if (!map || map->type != BM_Y_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (!strcmp(map->kids[i]->str, key))
			return map->kids[i + 1];
	return NULL;
}

const char *bm_y_str(const struct bm_ynode *n)
{
	return n && n->type == BM_Y_SCALAR ? n->str : NULL;
}

int bm_y_is_null(const struct bm_ynode *n)
{
	if (!n)
		return 1;
	if (n->type != BM_Y_SCALAR || n->quoted)
		return 0;
	return !strcmp(n->str, "") || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
	       !strcmp(n->str, "Null") || !strcmp(n->str, "NULL");
}

struct bm_ynode *bm_y_new(struct bm_yfile *f, enum bm_ytype type, int line)
{
	struct bm_ynode *n = arena_alloc(f->arena, sizeof(*n));

	if (n) {
		n->type = type;
		n->line = line;
		n->size = 1;
	}
	return n;
}

struct bm_ynode *bm_y_scalar(struct bm_yfile *f, const char *s, int quoted)
{
	struct bm_ynode *n = bm_y_new(f, BM_Y_SCALAR, 0);

	if (!n)
		return NULL;
	n->len = strlen(s);
	n->str = arena_strdup(f->arena, s, n->len);
	n->quoted = quoted;
	return n->str ? n : NULL;
}

int bm_y_append(struct bm_yfile *f, struct bm_ynode *parent, struct bm_ynode *kid)
{
	struct bm_ynode **k = arena_alloc(f->arena, (parent->n + 1) * sizeof(*k));

	if (!k)
		return -1;
	if (parent->n)
		memcpy(k, parent->kids, parent->n * sizeof(*k));
	k[parent->n++] = kid;
	parent->kids = k;
	parent->size += kid->size;
	return 0;
}

int bm_y_set(struct bm_yfile *f, struct bm_ynode *map, const char *key, struct bm_ynode *val)
{
	if (map->type != BM_Y_MAP)
		return -1;
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (!strcmp(map->kids[i]->str, key)) {
			map->kids[i + 1] = val;
			return 0;
		}
	struct bm_ynode *k = bm_y_scalar(f, key, 0);

	if (!k || bm_y_append(f, map, k) || bm_y_append(f, map, val))
		return -1;
	return 0;
}

static int emit(yaml_emitter_t *em, yaml_event_t *ev)
{
	return yaml_emitter_emit(em, ev) ? 0 : -1;
}

static int emit_node(yaml_emitter_t *em, const struct bm_ynode *n)
{
	/* Explicit stack: the tree height is bounded by BM_YAML_MAX_DEPTH plus alias height. */
	struct {
		const struct bm_ynode *n;
		size_t i;
	} st[2 * BM_YAML_MAX_DEPTH + 2];
	int sp = 0;
	yaml_event_t ev;

	st[0].n = n;
	st[0].i = 0;
	for (;;) {
		const struct bm_ynode *cur = st[sp].n;

		if (cur->type == BM_Y_SCALAR) {
			yaml_scalar_style_t style = cur->quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE :
								  YAML_PLAIN_SCALAR_STYLE;

			if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)cur->str,
							  (int)cur->len, !cur->quoted, cur->quoted, style) ||
			    emit(em, &ev))
				return -1;
		} else if (st[sp].i == 0 && cur->n == 0) {
			if (cur->type == BM_Y_MAP) {
				if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
									 YAML_FLOW_MAPPING_STYLE) ||
				    emit(em, &ev) || !yaml_mapping_end_event_initialize(&ev) ||
				    emit(em, &ev))
					return -1;
			} else if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
									  YAML_FLOW_SEQUENCE_STYLE) ||
				   emit(em, &ev) || !yaml_sequence_end_event_initialize(&ev) ||
				   emit(em, &ev)) {
				return -1;
			}
		} else if (st[sp].i < cur->n) {
			if (st[sp].i == 0) {
				int ok = cur->type == BM_Y_MAP ?
						 yaml_mapping_start_event_initialize(
							 &ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) :
						 yaml_sequence_start_event_initialize(
							 &ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
				if (!ok || emit(em, &ev))
					return -1;
			}
			if (sp + 1 >= (int)(sizeof(st) / sizeof(st[0])))
				return -1;
			st[sp + 1].n = cur->kids[st[sp].i++];
			st[sp + 1].i = 0;
			sp++;
			continue;
		} else {
			int ok = cur->type == BM_Y_MAP ? yaml_mapping_end_event_initialize(&ev) :
							 yaml_sequence_end_event_initialize(&ev);
			if (!ok || emit(em, &ev))
				return -1;
		}
		if (sp == 0)
			return 0;
		sp--;
	}
}

static int write_handler(void *data, unsigned char *buf, size_t size)
{
	return fwrite(buf, 1, size, data) == size;
}

int bm_yaml_emit(FILE *fp, const struct bm_ydoc *doc)
{
	yaml_emitter_t em;
	yaml_event_t ev;
	int rc = -1;

	if (!yaml_emitter_initialize(&em))
		return -1;
	yaml_emitter_set_output(&em, write_handler, fp);
	yaml_emitter_set_unicode(&em, 1);
	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) || emit(&em, &ev))
		goto cleanup;
	if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 0) || emit(&em, &ev))
		goto cleanup;
	if (doc->root) {
		if (emit_node(&em, doc->root))
			goto cleanup;
	} else if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)"", 0, 1, 0,
						 YAML_PLAIN_SCALAR_STYLE) ||
		   emit(&em, &ev)) {
		goto cleanup;
	}
	if (!yaml_document_end_event_initialize(&ev, 1) || emit(&em, &ev))
		goto cleanup;
	if (!yaml_stream_end_event_initialize(&ev) || emit(&em, &ev))
		goto cleanup;
	rc = yaml_emitter_flush(&em) ? 0 : -1;
cleanup:
	yaml_emitter_delete(&em);
	return rc;
}
