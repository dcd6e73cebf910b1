/* A hash table from byte strings to 64-bit values (open addressing, linear probing): content
 * addressing of backends, sets and routes, and the agent's id bookkeeping. */
#ifndef BM_BLOBTAB_H
#define BM_BLOBTAB_H

#include <stddef.h>
#include <stdint.h>

struct bm_blob_ent {
	void *key;      /* owned copy; NULL = empty; (void *)1 = deleted */
	uint32_t len;
	uint32_t hash;
	uint64_t val;
	uint64_t aux;   /* caller's use (e.g. generation last seen) */
	uint64_t extra; /* caller's use */
};

struct bm_blobtab {
	struct bm_blob_ent *v;
	size_t cap;     /* power of two, or 0 */
	size_t n;       /* live entries */
	size_t used;    /* live + deleted */
};

/* The entry for key, or NULL. */
struct bm_blob_ent *bm_blobtab_get(const struct bm_blobtab *t, const void *key, size_t len);
/* The entry for key, created (val = aux = extra = 0) when absent; NULL when out of memory. */
struct bm_blob_ent *bm_blobtab_put(struct bm_blobtab *t, const void *key, size_t len,
				   int *created);
void bm_blobtab_del(struct bm_blobtab *t, struct bm_blob_ent *e);
void bm_blobtab_free(struct bm_blobtab *t);
static inline int bm_blob_live(const struct bm_blob_ent *e)
{
	return e->key && e->key != (void *)1;
}

#endif
