/* Shared by catalog.c and catalog_ep.c only: building the catalog's entries and endpoints. */
#ifndef BM_CATALOG_INTERNAL_H
#define BM_CATALOG_INTERNAL_H

#include "catalog.h"

int bm_cat_add_services(struct bm_catalog *cat);
int bm_cat_add_service_entries(struct bm_catalog *cat);
int bm_cat_collect_endpoints(struct bm_catalog *cat, struct bm_cat_svc *s);

#endif
