/* Shared by the catalog*.c files only: building the catalog's entries and endpoints, and the
 * hash indexes that keep it linear in the size of the config. */
#ifndef BM_CATALOG_INTERNAL_H
#define BM_CATALOG_INTERNAL_H

#include <stdint.h>

#include "blobtab.h"
#include "catalog.h"

struct bm_u32list {
	uint32_t *v;
	uint32_t n, cap;
};

struct bm_cat_index {
	struct bm_blobtab hosts;      /* host -> index in cat->svcs */
	struct bm_blobtab pods;       /* ns, name -> index in cfg->pods */
	struct bm_blobtab pod_labels; /* ns, label key, value -> list of pods */
	struct bm_blobtab eps;        /* ns, service -> list of Endpoints/EndpointSlices */
	struct bm_u32list *lists;
	size_t n_lists, cap_lists;
};

int bm_cat_add_services(struct bm_catalog *cat);
int bm_cat_add_service_entries(struct bm_catalog *cat);
int bm_cat_collect_endpoints(struct bm_catalog *cat, struct bm_cat_svc *s);

int bm_cat_index_config(struct bm_catalog *cat);
int bm_cat_index_host(struct bm_catalog *cat, size_t svc);
void bm_cat_index_free(struct bm_cat_index *x);
const struct bm_cat_svc *bm_cat_by_host(const struct bm_catalog *cat, const char *host);
const struct bm_pod *bm_cat_pod(const struct bm_catalog *cat, const char *ns, const char *name);
/* Pods of namespace ns carrying label l (in config order), or NULL. */
const struct bm_u32list *bm_cat_pods_with(const struct bm_catalog *cat, const char *ns,
					  const struct bm_label *l);
const struct bm_u32list *bm_cat_endpoints_of(const struct bm_catalog *cat, const char *ns,
					     const char *service);

#endif
