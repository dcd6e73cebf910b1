/* Kubernetes endpoint kinds into the model: Endpoints (one model entry per subset) and
 * EndpointSlice (IPv4/IPv6; FQDN slices are reported unsupported and left out). */
#include "config_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- Endpoints and EndpointSlice ---- */

void bm_cfg_endpoints_free(struct bm_endpoints *x)
{
	bm_cfg_meta_free(&x->meta);
	free(x->service);
	for (size_t i = 0; i < x->n_addrs; i++) {
		free(x->addrs[i].node_name);
		free(x->addrs[i].pod_name);
	}
	free(x->addrs);
	for (size_t i = 0; i < x->n_ports; i++)
		free(x->ports[i].name);
	free(x->ports);
}

/* targetRef: an ObjectReference; only kind Pod gives a pod name. */
static void ep_target_ref(struct bm_px *p, const struct bm_ynode *it, struct bm_ep_addr *a)
{
	static const char *const known[] = { "kind",	"name",	     "namespace", "uid",
					     "apiVersion", "resourceVersion", "fieldPath", NULL };
	const struct bm_ynode *ref = NULL;
	const char *kind = NULL;
	size_t m;

	if (bm_px_fmap(p, it, "targetRef", &ref) != 1)
		return;
	m = bm_px_push(p, "targetRef");
	bm_px_unknown(p, ref, known);
	if (bm_px_fstr(p, ref, "kind", &kind) == 1 && !strcmp(kind, "Pod"))
		bm_px_fdup(p, ref, "name", &a->pod_name);
	else
		bm_px_fstr(p, ref, "name", &kind);
	bm_px_pop(p, m);
}

/* ports[] of a subset or a slice; an absent port (slice: "all ports") is reported and left out. */
static void ep_ports(struct bm_px *p, const struct bm_ynode *parent, struct bm_endpoints *x,
		     bool slice)
{
	static const char *const known[] = { "name", "port", "protocol", "appProtocol", NULL };
	const struct bm_ynode *ports = NULL;
	size_t mark;

	if (bm_px_fseq(p, parent, "ports", &ports) != 1)
		return;
	mark = bm_px_push(p, "ports");
	for (size_t i = 0; i < ports->n; i++) {
		const struct bm_ynode *it = ports->kids[i];
		size_t m = bm_px_push_idx(p, i);
		struct bm_ep_port ep = { .proto = BM_PROTO_TCP }, *slot;
		const char *s;
		int r;

		if (bm_px_map(p, it) != 1)
			goto next;
		bm_px_unknown(p, it, known);
		r = bm_px_fport(p, it, "port", &ep.port);
		bm_px_fproto(p, it, "protocol", &ep.proto);
		bm_px_fstr(p, it, "appProtocol", &s);
		if (r == 0 && slice) {
			size_t mp = bm_px_push(p, "port");

			bm_px_unsup_why(p, it->line, "absent port means all ports");
			bm_px_pop(p, mp);
		} else if (r == 0) {
			bm_px_missing(p, it->line, "port");
		}
		if (r == 1 && (slot = bm_px_grow(p, &x->ports, &x->n_ports, sizeof(*x->ports)))) {
			*slot = ep;
			bm_px_fdup(p, it, "name", &slot->name);
		}
next:
		bm_px_pop(p, m);
	}
	bm_px_pop(p, mark);
}

static void ep_addresses(struct bm_px *p, const struct bm_ynode *sub, const char *key, bool ready,
			 struct bm_endpoints *x)
{
	static const char *const known[] = { "ip", "hostname", "nodeName", "targetRef", NULL };
	const struct bm_ynode *list = NULL;
	size_t mark;

	if (bm_px_fseq(p, sub, key, &list) != 1)
		return;
	mark = bm_px_push(p, key);
	for (size_t i = 0; i < list->n; i++) {
		const struct bm_ynode *it = list->kids[i];
		size_t m = bm_px_push_idx(p, i);
		struct bm_ep_addr *a;
		const char *s;

		if (bm_px_map(p, it) == 1 && (a = bm_px_grow(p, &x->addrs, &x->n_addrs,
							     sizeof(*x->addrs)))) {
			bm_px_unknown(p, it, known);
			a->ready = ready;
			size_t mi = bm_px_push(p, "ip");

			if (bm_px_ip(p, bm_px_val(it, "ip"), &a->ip) == 0)
				bm_px_err(p, it->line, "required");
			bm_px_pop(p, mi);
			bm_px_fstr(p, it, "hostname", &s);
			bm_px_fdup(p, it, "nodeName", &a->node_name);
			ep_target_ref(p, it, a);
		}
		bm_px_pop(p, m);
	}
	bm_px_pop(p, mark);
}

static int meta_copy(struct bm_px *p, const struct bm_meta *src, struct bm_meta *dst)
{
	*dst = (struct bm_meta){ .loc = src->loc };
	dst->name = bm_px_strdup(p, src->name);
	dst->ns = bm_px_strdup(p, src->ns);
	if (src->uid)
		dst->uid = bm_px_strdup(p, src->uid);
	for (size_t i = 0; i < src->labels.n; i++) {
		struct bm_label *l = bm_px_grow(p, &dst->labels.v, &dst->labels.n,
						sizeof(*dst->labels.v));

		if (!l)
			return -1;
		l->key = bm_px_strdup(p, src->labels.v[i].key);
		l->val = bm_px_strdup(p, src->labels.v[i].val);
	}
	return p->errors ? -1 : 0;
}

/* One model entry per subset (a subset is addresses x ports, like a slice); none: one empty. */
void bm_cfg_endpoints(struct bm_px *p, const struct bm_ynode *root)
{
	static const char *const top[] = { "apiVersion", "kind", "metadata", "subsets", NULL };
	static const char *const known[] = { "addresses", "notReadyAddresses", "ports", NULL };
	struct bm_endpoints *xs = NULL;
	struct bm_meta meta = { 0 };
	const struct bm_ynode *subs = NULL;
	size_t n = 0, mark;

	bm_px_meta(p, root, &meta, BM_NAME_SUBDOMAIN, false);
	bm_px_unknown(p, root, top);
	if (bm_px_fseq(p, root, "subsets", &subs) == 1) {
		mark = bm_px_push(p, "subsets");
		for (size_t i = 0; i < subs->n; i++) {
			const struct bm_ynode *sub = subs->kids[i];
			size_t m = bm_px_push_idx(p, i);
			struct bm_endpoints *x;

			if (bm_px_map(p, sub) == 1 && (x = bm_px_grow(p, &xs, &n, sizeof(*xs)))) {
				bm_px_unknown(p, sub, known);
				ep_addresses(p, sub, "addresses", true, x);
				ep_addresses(p, sub, "notReadyAddresses", false, x);
				ep_ports(p, sub, x, false);
			}
			bm_px_pop(p, m);
		}
		bm_px_pop(p, mark);
	}
	if (!n)
		bm_px_grow(p, &xs, &n, sizeof(*xs));
	for (size_t i = 0; i < n; i++) {
		struct bm_endpoints *x = &xs[i];

		if (!p->errors && !meta_copy(p, &meta, &x->meta))
			x->service = bm_px_strdup(p, meta.name);
		BM_PX_COMMIT(p, p->c->endpoints, p->c->n_endpoints, *x, bm_cfg_endpoints_free);
	}
	free(xs);
	bm_cfg_meta_free(&meta);
}

static void slice_endpoint(struct bm_px *p, const struct bm_ynode *it, bool v6,
			   struct bm_endpoints *x)
{
	static const char *const known[] = { "addresses", "conditions", "hostname", "nodeName",
					     "targetRef", "zone", "hints", "deprecatedTopology",
					     NULL };
	static const char *const cknown[] = { "ready", "serving", "terminating", NULL };
	const struct bm_ynode *addrs = NULL, *cond = NULL;
	struct bm_ep_addr *a;
	bool b;
	const char *s;
	size_t mark;

	if (bm_px_map(p, it) != 1 || !(a = bm_px_grow(p, &x->addrs, &x->n_addrs, sizeof(*x->addrs))))
		return;
	bm_px_unknown(p, it, known);
	a->ready = true; /* absent "ready" means ready */
	if (bm_px_fseq(p, it, "addresses", &addrs) == 0 || (addrs && addrs->n == 0))
		bm_px_ferr(p, it, "addresses", "at least one address is required");
	if (addrs && addrs->type == BM_Y_SEQ) {
		mark = bm_px_push(p, "addresses");
		/* All addresses of an endpoint are fungible: the mesh uses the first. */
		for (size_t i = 0; i < addrs->n; i++) {
			size_t m = bm_px_push_idx(p, i);
			struct bm_ip ip;

			if (i >= 100)
				bm_px_err(p, addrs->kids[i]->line, "at most 100 addresses");
			else if (bm_px_ip(p, addrs->kids[i], &ip) != 1)
				;
			else if (bm_ip_is_v4(&ip) == v6)
				bm_px_err(p, addrs->kids[i]->line, "not an %s address (addressType)",
					  v6 ? "IPv6" : "IPv4");
			else if (i == 0)
				a->ip = ip;
			bm_px_pop(p, m);
			if (i >= 100)
				break;
		}
		bm_px_pop(p, mark);
	}
	if (bm_px_fmap(p, it, "conditions", &cond) == 1) {
		mark = bm_px_push(p, "conditions");
		bm_px_unknown(p, cond, cknown);
		bm_px_fbool(p, cond, "ready", &a->ready);
		bm_px_fbool(p, cond, "serving", &b);
		bm_px_fbool(p, cond, "terminating", &b);
		bm_px_pop(p, mark);
	}
	bm_px_fstr(p, it, "hostname", &s);
	bm_px_fdup(p, it, "nodeName", &a->node_name);
	bm_px_fstr(p, it, "zone", &s);
	ep_target_ref(p, it, a);
}

void bm_cfg_endpoint_slice(struct bm_px *p, const struct bm_ynode *root)
{
	static const char *const top[] = { "apiVersion", "kind", "metadata", "addressType",
					   "endpoints", "ports", NULL };
	static const char *const types[] = { "IPv4", "IPv6", "FQDN", NULL };
	struct bm_endpoints x = { .is_slice = true };
	const struct bm_ynode *eps = NULL;
	const char *svc;
	int type = 0, r;
	size_t mark;

	bm_px_meta(p, root, &x.meta, BM_NAME_SUBDOMAIN, false);
	bm_px_unknown(p, root, top);
	svc = bm_labels_get(&x.meta.labels, "kubernetes.io/service-name");
	if (svc)
		x.service = bm_px_strdup(p, svc);
	if (!svc && x.meta.name) {
		size_t m = bm_px_push(p, "metadata");

		bm_px_ferr(p, bm_y_get(root, "metadata"), "labels",
			   "\"kubernetes.io/service-name\" is required (the Service the slice "
			   "belongs to)");
		bm_px_pop(p, m);
	}
	r = bm_px_fenum(p, root, "addressType", types, &type);
	if (r == 0)
		bm_px_missing(p, root->line, "addressType");
	if (r == 1 && type == 2) {
		mark = bm_px_push(p, "addressType");
		bm_px_unsup(p, bm_px_key_line(root, "addressType"), "=FQDN");
		bm_px_pop(p, mark);
		bm_cfg_endpoints_free(&x);
		return; /* the essential part is unsupported: left out of the model */
	}
	if (bm_px_fseq(p, root, "endpoints", &eps) == 1) {
		mark = bm_px_push(p, "endpoints");
		for (size_t i = 0; i < eps->n; i++) {
			size_t m = bm_px_push_idx(p, i);

			slice_endpoint(p, eps->kids[i], type == 1, &x);
			bm_px_pop(p, m);
		}
		bm_px_pop(p, mark);
	}
	ep_ports(p, root, &x, true);
	BM_PX_COMMIT(p, p->c->endpoints, p->c->n_endpoints, x, bm_cfg_endpoints_free);
}
