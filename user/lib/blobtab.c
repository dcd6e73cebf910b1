/* A hash table from byte strings to 64-bit values: open addressing, linear probing, tombstones
 * on delete, grown at 70% occupancy. Keys are copied. */
#include "blobtab.h"

#include <stdlib.h>
#include <string.h>

#define DELETED ((void *)1)

static uint32_t hash_bytes(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint32_t h = 2166136261u; /* FNV-1a, then a final mix */

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	h ^= h >> 16;
	h *= 0x7feb352du;
	h ^= h >> 15;
	return h;
}

static struct bm_blob_ent *probe(const struct bm_blobtab *t, const void *key, size_t len,
				 uint32_t h, struct bm_blob_ent **slot_for_insert)
{
	size_t mask = t->cap - 1, i = h & mask;
	struct bm_blob_ent *first_free = NULL;

	for (size_t n = 0; n < t->cap; n++, i = (i + 1) & mask) {
		struct bm_blob_ent *e = &t->v[i];

		if (!e->key) {
			if (!first_free)
				first_free = e;
			break;
		}
		if (e->key == DELETED) {
			if (!first_free)
				first_free = e;
			continue;
		}
		if (e->hash == h && e->len == len && !memcmp(e->key, key, len))
			return e;
	}
	if (slot_for_insert)
		*slot_for_insert = first_free;
	return NULL;
}

struct bm_blob_ent *bm_blobtab_get(const struct bm_blobtab *t, const void *key, size_t len)
{
	if (!t->cap)
		return NULL;
	return probe(t, key, len, hash_bytes(key, len), NULL);
}

/* Rehash into a table twice as large, or as large when tombstones are most of the load. */
static int grow(struct bm_blobtab *t)
{
	size_t oldcap = t->cap;
	size_t cap = !oldcap ? 64 : t->n * 4 < oldcap ? oldcap : oldcap * 2;
	struct bm_blob_ent *old = t->v, *nv = calloc(cap, sizeof(*nv));

	if (!nv)
		return -1;
	t->v = nv;
	t->cap = cap;
	t->used = t->n;
	for (size_t i = 0; i < oldcap; i++) {
		struct bm_blob_ent *e = &old[i], *slot = NULL;

		if (!bm_blob_live(e))
			continue;
		probe(t, e->key, e->len, e->hash, &slot);
		*slot = *e;
	}
	free(old);
	return 0;
}

struct bm_blob_ent *bm_blobtab_put(struct bm_blobtab *t, const void *key, size_t len,
				   int *created)
{
	struct bm_blob_ent *e, *slot = NULL;
	uint32_t h = hash_bytes(key, len);

	if (created)
		*created = 0;
	if ((t->used + 1) * 10 >= t->cap * 7 && grow(t))
		return NULL;
	e = probe(t, key, len, h, &slot);
	if (e)
		return e;
	void *k = malloc(len ? len : 1);

	if (!k)
		return NULL;
	memcpy(k, key, len);
	if (!slot->key)
		t->used++;
	slot->key = k;
	slot->len = (uint32_t)len;
	slot->hash = h;
	slot->val = 0;
	slot->aux = 0;
	slot->extra = 0;
	t->n++;
	if (created)
		*created = 1;
	return slot;
}

void bm_blobtab_del(struct bm_blobtab *t, struct bm_blob_ent *e)
{
	if (!bm_blob_live(e))
		return;
	free(e->key);
	e->key = DELETED;
	t->n--;
}

void bm_blobtab_free(struct bm_blobtab *t)
{
	for (size_t i = 0; i < t->cap; i++)
		if (bm_blob_live(&t->v[i]))
			free(t->v[i].key);
	free(t->v);
	memset(t, 0, sizeof(*t));
}
