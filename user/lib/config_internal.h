/* Shared by the config*.c files only: the per-resource parse context, the typed field readers and
 * the per-kind parsers. Not an API: config.h is. */
#ifndef BM_CONFIG_INTERNAL_H
#define BM_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "ytree.h"

#define BM_PX_PATH 256 /* longest field path kept in messages (longer ones end in "...") */

/* Parse context of one resource (one YAML document or List item). */
struct bm_px {
	struct bm_config *c;
	const char *file;  /* interned in c->files */
	const char *kind;  /* "Service", ...; NULL until known */
	const char *ns;    /* set once metadata is read: messages say "<Kind> <ns>/<name>: " */
	const char *name;
	unsigned errors;   /* errors reported against this resource: it is not added */
	size_t plen;
	char path[BM_PX_PATH]; /* field path being read: "spec.ports[0].port" */
};

/* ---- diagnostics (config.c) ---- */
/* Stores msg, the whole line ("error: a.yaml:3: ..."), with its level and location. */
void bm_cfg_diag_raw(struct bm_config *c, enum bm_diag_level lvl, const char *file, int line,
		     const char *msg);
/* Records (kind, ns, name) of p's resource; an ERROR and -1 when it was seen before. */
int bm_cfg_register(struct bm_px *p, int line);

/* ---- messages (config_util.c) ---- */
/* "error: <file>:<line>: <Kind> <ns>/<name>: <path>: <what>" (parts left out when unknown). */
void bm_px_err(struct bm_px *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "unsupported: <Kind>/<path><suffix> at <file>:<line>"; suffix e.g. "=DNS", may be NULL. */
void bm_px_unsup(struct bm_px *p, int line, const char *suffix_fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "unsupported: <Kind>/<path> at <file>:<line> (<why>)". */
void bm_px_unsup_why(struct bm_px *p, int line, const char *why);
/* An error about field key of map: path gets the key, the line is the value's (else the key's,
 * else the map's). */
void bm_px_ferr(struct bm_px *p, const struct bm_ynode *map, const char *key,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* "<path>.<key>: required" at line. */
void bm_px_missing(struct bm_px *p, int line, const char *key);
void bm_px_oom(struct bm_px *p, int line);

/* ---- field path (config_util.c) ---- */
size_t bm_px_push(struct bm_px *p, const char *key); /* returns the mark to pop back to */
size_t bm_px_push_idx(struct bm_px *p, size_t i);
void bm_px_pop(struct bm_px *p, size_t mark);

/* ---- typed readers (values: config_util.c; fields, labels: config_fields.c) ----
 * Value readers take the node (path already pushed); field readers take (map, key) and push the
 * key themselves. All return 1 when read, 0 when absent or null (out untouched), -1 when wrong
 * (an ERROR was reported). */
const struct bm_ynode *bm_px_val(const struct bm_ynode *map, const char *key); /* NULL if null */
int bm_px_key_line(const struct bm_ynode *map, const char *key); /* line of the key, or map's */

int bm_px_map(struct bm_px *p, const struct bm_ynode *v);
int bm_px_seq(struct bm_px *p, const struct bm_ynode *v);
int bm_px_str(struct bm_px *p, const struct bm_ynode *v, const char **out);
int bm_px_int(struct bm_px *p, const struct bm_ynode *v, long long lo, long long hi,
	      long long *out);
int bm_px_port(struct bm_px *p, const struct bm_ynode *v, uint16_t *out);
int bm_px_bool(struct bm_px *p, const struct bm_ynode *v, bool *out);
/* One of names[] (NULL-terminated), exact match; *out is the index. */
int bm_px_enum(struct bm_px *p, const struct bm_ynode *v, const char *const *names, int *out);
int bm_px_ip(struct bm_px *p, const struct bm_ynode *v, struct bm_ip *out);
int bm_px_proto(struct bm_px *p, const struct bm_ynode *v, enum bm_l4proto *out);
int bm_px_labels(struct bm_px *p, const struct bm_ynode *v, struct bm_labels *out);

int bm_px_fmap(struct bm_px *p, const struct bm_ynode *map, const char *key,
	       const struct bm_ynode **out);
int bm_px_fseq(struct bm_px *p, const struct bm_ynode *map, const char *key,
	       const struct bm_ynode **out);
int bm_px_fstr(struct bm_px *p, const struct bm_ynode *map, const char *key, const char **out);
/* A string field copied into *out (which must be NULL before). */
int bm_px_fdup(struct bm_px *p, const struct bm_ynode *map, const char *key, char **out);
int bm_px_fint(struct bm_px *p, const struct bm_ynode *map, const char *key, long long lo,
	       long long hi, long long *out);
int bm_px_fport(struct bm_px *p, const struct bm_ynode *map, const char *key, uint16_t *out);
int bm_px_fbool(struct bm_px *p, const struct bm_ynode *map, const char *key, bool *out);
/* A Go duration ("10s", "1.5s", "250ms", "1m30s") in whole ms, at least min_ms (config_http.c). */
int bm_px_fduration(struct bm_px *p, const struct bm_ynode *map, const char *key, uint32_t min_ms,
		    uint32_t *out_ms);
int bm_px_fenum(struct bm_px *p, const struct bm_ynode *map, const char *key,
		const char *const *names, int *out);
int bm_px_fproto(struct bm_px *p, const struct bm_ynode *map, const char *key,
		 enum bm_l4proto *out);
int bm_px_flabels(struct bm_px *p, const struct bm_ynode *map, const char *key,
		  struct bm_labels *out);
/* A list of strings, each copied. */
int bm_px_fstrs(struct bm_px *p, const struct bm_ynode *map, const char *key, char ***out,
		size_t *n);

/* Every key of map not in known[] (NULL-terminated) reported unsupported at the key's line.
 * Keys whose value is null are absent and not reported. */
void bm_px_unknown(struct bm_px *p, const struct bm_ynode *map, const char *const *known);
/* exportTo: absent or ["*"] is fine, a list of other strings is unsupported, anything else
 * is an error. */
void bm_px_export_to(struct bm_px *p, const struct bm_ynode *spec);

/* ---- names (config_names.c; bm_cfg_one_of in config_util.c) ---- */
bool bm_cfg_one_of(const char *s, const char *const *set); /* set is NULL-terminated */
bool bm_cfg_is_dns_label(const char *s);     /* RFC 1123 label: [a-z0-9-], <= 63 */
bool bm_cfg_is_dns1035_label(const char *s); /* same, starting with a letter */
bool bm_cfg_is_dns_subdomain(const char *s); /* dot-separated labels, <= 253 */
bool bm_cfg_is_iana_svc_name(const char *s); /* port names: <= 15, [a-z0-9-], a letter, no "--" */
bool bm_cfg_is_hostname(const char *s);      /* Istio host: optional "*." prefix, or "*" */

/* ---- memory and metadata (config_fields.c) ---- */
/* Grows *arr (of n elements of sz bytes) by one zeroed element; NULL (and an ERROR) when out of
 * memory. Capacity is implied by n (powers of two), so the model needs no capacity fields. */
void *bm_px_grow(struct bm_px *p, void *arr_ptr, size_t *n, size_t sz);
void *bm_cfg_grow(void *arr_ptr, size_t *n, size_t sz);
char *bm_px_strdup(struct bm_px *p, const char *s);
void bm_cfg_labels_free(struct bm_labels *l);
void bm_cfg_meta_free(struct bm_meta *m);
/* What metadata.name must be: RFC 1123 subdomain (most kinds), RFC 1123 label (Namespace),
 * RFC 1035 label (Service: also starts with a letter). */
enum bm_name_rule { BM_NAME_SUBDOMAIN, BM_NAME_LABEL, BM_NAME_1035 };
/* meta with name, ns, uid, labels; loc = the document's line; then the duplicate check. Reports
 * errors; 0 or -1. */
int bm_px_meta(struct bm_px *p, const struct bm_ynode *root, struct bm_meta *m,
	       enum bm_name_rule rule, bool cluster_scoped);
void bm_cfg_workload_entry_free(struct bm_workload_entry *w);

/* Adds x to the model array unless the resource had errors (then frees it). */
#define BM_PX_COMMIT(p, arr, n, x, free_fn)                                     \
	do {                                                                    \
		__typeof__(x) *slot_ =                                          \
			(p)->errors ? NULL : bm_px_grow(p, &(arr), &(n), sizeof(x)); \
		if (slot_)                                                      \
			*slot_ = (x);                                           \
		else                                                            \
			free_fn(&(x));                                          \
	} while (0)

/* Top-level keys of most kinds. */
extern const char *const bm_cfg_top_keys[];

/* ---- kinds: config_k8s.c (Namespace, Service, Pod), config_ep.c (Endpoints, EndpointSlice),
 * config_istio.c (ServiceEntry, WorkloadEntry), config_route.c (DestinationRule,
 * VirtualService) ---- */
void bm_cfg_namespace(struct bm_px *p, const struct bm_ynode *root);
void bm_cfg_configmap(struct bm_px *p, const struct bm_ynode *root);
void bm_cfg_service(struct bm_px *p, const struct bm_ynode *root);
void bm_cfg_pod(struct bm_px *p, const struct bm_ynode *root);
void bm_cfg_endpoints(struct bm_px *p, const struct bm_ynode *root);
void bm_cfg_endpoint_slice(struct bm_px *p, const struct bm_ynode *root);
void bm_cfg_service_entry(struct bm_px *p, const struct bm_ynode *root);
void bm_cfg_workload_entry(struct bm_px *p, const struct bm_ynode *root);
void bm_cfg_destination_rule(struct bm_px *p, const struct bm_ynode *root);
void bm_cfg_virtual_service(struct bm_px *p, const struct bm_ynode *root);

/* ---- VirtualService parts: config_route.c (destinations), config_http.c (spec.http) ---- */
/* The Istio Destination at key of map ("destination", "mirror"): host (required), subset,
 * port.number. 1 read, 0 absent, -1 wrong (reported). */
int bm_cfg_destination(struct bm_px *p, const struct bm_ynode *map, const char *key,
		       struct bm_destination *d);
/* spec.http into x->http (and has_http, http_loc); mesh: x is bound to the mesh gateway. */
void bm_cfg_http_routes(struct bm_px *p, const struct bm_ynode *spec, struct bm_virtual_service *x,
			bool mesh);
void bm_cfg_http_routes_free(struct bm_http_route *v, size_t n);

void bm_cfg_namespace_free(struct bm_namespace *x);
void bm_cfg_service_free(struct bm_service *x);
void bm_cfg_pod_free(struct bm_pod *x);
void bm_cfg_endpoints_free(struct bm_endpoints *x);
void bm_cfg_service_entry_free(struct bm_service_entry *x);
void bm_cfg_destination_rule_free(struct bm_destination_rule *x);
void bm_cfg_virtual_service_free(struct bm_virtual_service *x);

#endif
