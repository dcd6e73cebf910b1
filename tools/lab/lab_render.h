/* bm-lab-render, the lab's apiserver: the objects it stores, the allocations it keeps, and
 * the steps (load, allocate, render) shared by its source files. See docs/lab.md. */
#ifndef BM_LAB_RENDER_H
#define BM_LAB_RENDER_H

#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>

#include "ytree.h"

#define LAB_MAX_NODES    64   /* node i owns 10.244.i.0/24: keep well below 255 */
#define LAB_MAX_REPLICAS 64   /* per Deployment */
#define LAB_HOST_MIN     2    /* .1 is the node's cni0 */
#define LAB_HOST_MAX     254
#define LAB_ERRLEN       1024
#define LAB_RENDERED     "# rendered by bpfmesh lab from "

/* One stored object: identity, where it came from, and its document as applied. */
struct lab_obj {
	const char *group;   /* API group of apiVersion; "" for the core group */
	const char *kind;
	const char *ns;      /* "" for cluster-scoped kinds */
	const char *name;
	const char *path;    /* source file (absolute when it was a file) */
	int line;            /* line of the document's first key */
	struct bm_ynode *root;
};

/* A Service's cluster IPs ("" when that family is not allocated). */
struct lab_svc {
	const char *ns, *name;
	char ip4[INET_ADDRSTRLEN];
	char ip6[INET6_ADDRSTRLEN];
	int keep;
};

/* A Pod: made from a Deployment (owner, template hash) or applied as a Pod (owner "-"). */
struct lab_pod {
	const char *ns, *owner, *hash, *name, *uid;
	int node;                    /* 1-based node index */
	int host;                    /* host number in the node's pod CIDRs */
	int keep;
	const struct lab_obj *src;   /* the Deployment or Pod it comes from (after reconcile) */
};

struct lab {
	const char *state;           /* state dir */
	const char *prefix;          /* node names are <prefix>-node<i> */
	int nodes;
	struct lab_obj *objs;
	size_t n_objs, cap_objs;
	struct lab_svc *svcs;
	size_t n_svcs, cap_svcs;
	struct lab_pod *pods;
	size_t n_pods, cap_pods;
	unsigned cursor;             /* round-robin over nodes for new pods */
	int next_host[LAB_MAX_NODES + 1]; /* per node: where the next host search starts */
	struct bm_yfile *files;      /* every parsed file: objects point into their arenas */
	size_t n_files, cap_files;
	struct bm_yfile scratch;     /* arena for strings and nodes the lab makes */
};

/* render_util.c: memory, strings, YAML helpers */
void lab_die_oom(void) __attribute__((noreturn));
void *lab_grow(void *v, size_t *cap, size_t n, size_t size);
const char *lab_str(struct lab *l, const char *s);
const char *lab_fmt(struct lab *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct bm_ynode *lab_scalar(struct lab *l, const char *s, int quoted);
struct bm_ynode *lab_map(struct lab *l);
struct bm_ynode *lab_seq(struct lab *l);
struct bm_ynode *lab_copy(struct lab *l, const struct bm_ynode *n);
void lab_set(struct lab *l, struct bm_ynode *map, const char *key, struct bm_ynode *val);
void lab_set_str(struct lab *l, struct bm_ynode *map, const char *key, const char *s, int quoted);
void lab_push(struct lab *l, struct bm_ynode *seq, struct bm_ynode *kid);
const struct bm_ynode *lab_path(const struct bm_ynode *n, const char *dotted);
int lab_int(const struct bm_ynode *n, long min, long max, long *out);
int lab_err(char *err, const struct lab_obj *o, const struct bm_ynode *at, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int lab_random(void *buf, size_t len);
int lab_write_atomic(const char *dir, const char *name, const char *data, size_t len, char *err);
char *lab_read_file(const char *path, size_t *len);

/* render_input.c: manifests in, the store in and out */
int lab_load_inputs(struct lab *l, char **paths, int n, struct lab_obj **out, size_t *n_out,
		    char *err);
int lab_store_load(struct lab *l, char *err);
int lab_store_save(struct lab *l, char *err);
struct lab_obj *lab_find_obj(struct lab *l, const struct lab_obj *key);
int lab_is(const struct lab_obj *o, const char *group, const char *kind);

/* render_kinds.c: what the lab reads from Services, Deployments and Pods */
int lab_validate(struct lab *l, const struct lab_obj *o, char *err);
int lab_node_index(const struct lab *l, const char *node_name);
const struct bm_ynode *lab_pod_template_meta(const struct lab_obj *o);
const struct bm_ynode *lab_pod_template_spec(const struct lab_obj *o);
long lab_replicas(const struct lab_obj *o);
int lab_labels_match(const struct bm_ynode *selector, const struct bm_ynode *labels);
void lab_pod_ports(struct lab *l, const struct lab_pod *p, const char *proto, char *out,
		   size_t outlen);
void lab_svc_families(const struct lab_obj *o, int *want4, int *want6, int *v6_first);

/* render_alloc.c: persistent allocations */
int lab_alloc_load(struct lab *l, char *err);
int lab_alloc_save(struct lab *l, char *err);
int lab_reconcile(struct lab *l, char *err);
struct lab_svc *lab_find_svc(struct lab *l, const char *ns, const char *name);
void lab_pod_ip4(const struct lab_pod *p, char *out, size_t len);
void lab_pod_ip6(const struct lab_pod *p, char *out, size_t len);
void lab_node_ip4(int node, char *out, size_t len);
void lab_node_ip6(int node, char *out, size_t len);
const char *lab_node_name(struct lab *l, int node);

/* render_out.c: the config dir the agents read, and the plan the CLI reads */
int lab_render(struct lab *l, int write, char *err);
int lab_bump_generation(struct lab *l, unsigned long *gen, char *err);
void lab_print_plan(struct lab *l, FILE *fp);

#endif
