/* Istio service registry kinds into the model: ServiceEntry and WorkloadEntry (also the inline
 * endpoints of a ServiceEntry). Unknown fields are reported unsupported with their path. */
#include "config_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- WorkloadEntry, and ServiceEntry endpoints ---- */

void bm_cfg_workload_entry_free(struct bm_workload_entry *w)
{
	bm_cfg_meta_free(&w->meta);
	for (size_t i = 0; i < w->n_ports; i++)
		free(w->ports[i].name);
	free(w->ports);
	bm_cfg_labels_free(&w->labels);
	free(w->service_account);
}

enum we_mode {
	WE_ALONE,  /* a WorkloadEntry: a DNS name as address is unsupported */
	WE_SE_IP,  /* endpoint of a STATIC (or NONE) ServiceEntry: addresses must be IPs */
	WE_SE_DNS, /* endpoint of a DNS ServiceEntry (left out anyway): DNS names are fine */
};

/* The body of a WorkloadEntry spec or of one ServiceEntry endpoint. Returns false when the
 * address is unsupported, which leaves a WorkloadEntry out of the model. */
static bool we_body(struct bm_px *p, const struct bm_ynode *spec, struct bm_workload_entry *w,
		    enum we_mode mode)
{
	static const char *const known[] = { "address", "ports", "labels", "serviceAccount",
					     "weight", "network", "locality", NULL };
	const struct bm_ynode *ports = NULL;
	const char *addr = NULL, *s;
	long long weight;
	bool usable = true;
	size_t mark;

	bm_px_unknown(p, spec, known);
	if (bm_px_fstr(p, spec, "address", &addr) == 1) {
		int line = bm_px_val(spec, "address")->line;

		mark = bm_px_push(p, "address");
		if (!bm_ip_parse(addr, &w->address)) {
			w->has_address = true;
		} else if (mode == WE_SE_IP) {
			bm_px_err(p, line, "\"%.64s\" is not an IP address (a STATIC ServiceEntry "
					   "needs IP endpoints)", addr);
		} else if (mode == WE_SE_DNS && bm_cfg_is_hostname(addr)) {
			/* fine for DNS resolution */
		} else if (!strncmp(addr, "unix://", 7) || bm_cfg_is_hostname(addr)) {
			bm_px_unsup(p, bm_px_key_line(spec, "address"), "=%.64s", addr);
			usable = false;
		} else {
			bm_px_err(p, line, "\"%.64s\" is neither an IP address nor a host name", addr);
		}
		bm_px_pop(p, mark);
	}
	if (bm_px_fmap(p, spec, "ports", &ports) == 1) {
		mark = bm_px_push(p, "ports");
		for (size_t i = 0; i + 1 < ports->n; i += 2) {
			const struct bm_ynode *k = ports->kids[i];
			size_t m = bm_px_push(p, k->str);
			struct bm_named_port np = { 0 }, *slot;

			if (!bm_cfg_is_dns_label(k->str))
				bm_px_err(p, k->line, "invalid port name (RFC 1123 label)");
			else if (bm_px_port(p, ports->kids[i + 1], &np.port) == 1 &&
				 (slot = bm_px_grow(p, &w->ports, &w->n_ports, sizeof(*w->ports)))) {
				slot->port = np.port;
				slot->name = bm_px_strdup(p, k->str);
			}
			bm_px_pop(p, m);
		}
		bm_px_pop(p, mark);
	}
	bm_px_flabels(p, spec, "labels", &w->labels);
	bm_px_fdup(p, spec, "serviceAccount", &w->service_account);
	if (bm_px_fint(p, spec, "weight", 0, UINT32_MAX, &weight) == 1)
		w->weight = (uint32_t)weight;
	bm_px_fstr(p, spec, "network", &s);
	bm_px_fstr(p, spec, "locality", &s);
	return usable;
}

void bm_cfg_workload_entry(struct bm_px *p, const struct bm_ynode *root)
{
	struct bm_workload_entry x = { 0 };
	const struct bm_ynode *spec = NULL;
	bool usable = true;

	bm_px_meta(p, root, &x.meta, BM_NAME_SUBDOMAIN, false);
	bm_px_unknown(p, root, bm_cfg_top_keys);
	if (bm_px_fmap(p, root, "spec", &spec) == 0)
		bm_px_missing(p, root->line, "spec");
	if (spec && spec->type == BM_Y_MAP) {
		size_t mark = bm_px_push(p, "spec");

		usable = we_body(p, spec, &x, WE_ALONE);
		bm_px_pop(p, mark);
	}
	if (!usable) {
		bm_cfg_workload_entry_free(&x);
		return;
	}
	BM_PX_COMMIT(p, p->c->workload_entries, p->c->n_workload_entries, x,
		     bm_cfg_workload_entry_free);
}

/* ---- ServiceEntry ---- */

void bm_cfg_service_entry_free(struct bm_service_entry *x)
{
	bm_cfg_meta_free(&x->meta);
	for (size_t i = 0; i < x->n_hosts; i++)
		free(x->hosts[i]);
	free(x->hosts);
	free(x->addresses);
	for (size_t i = 0; i < x->n_ports; i++) {
		free(x->ports[i].name);
		free(x->ports[i].protocol);
	}
	free(x->ports);
	for (size_t i = 0; i < x->n_endpoints; i++)
		bm_cfg_workload_entry_free(&x->endpoints[i]);
	free(x->endpoints);
	bm_cfg_labels_free(&x->workload_selector);
}

static void se_hosts(struct bm_px *p, const struct bm_ynode *spec, struct bm_service_entry *x)
{
	int r = bm_px_fstrs(p, spec, "hosts", &x->hosts, &x->n_hosts);
	const struct bm_ynode *list = bm_px_val(spec, "hosts");
	size_t mark;

	if (r == 0 || (r == 1 && x->n_hosts == 0)) {
		bm_px_ferr(p, spec, "hosts", "at least one host is required");
		return;
	}
	if (r != 1)
		return;
	mark = bm_px_push(p, "hosts");
	for (size_t i = 0; i < x->n_hosts; i++) {
		size_t m = bm_px_push_idx(p, i);

		if (!strcmp(x->hosts[i], "*") || !bm_cfg_is_hostname(x->hosts[i]))
			bm_px_err(p, list->kids[i]->line, "\"%.64s\" is not a valid host (a DNS name, "
							  "optionally with a \"*.\" prefix)", x->hosts[i]);
		bm_px_pop(p, m);
	}
	bm_px_pop(p, mark);
}

/* addresses[]: single IPs; a CIDR covering one address counts as that address; a wider CIDR is
 * unsupported (that address is left out). */
static void se_addresses(struct bm_px *p, const struct bm_ynode *spec, struct bm_service_entry *x)
{
	const struct bm_ynode *list = NULL;
	size_t mark;

	if (bm_px_fseq(p, spec, "addresses", &list) != 1)
		return;
	mark = bm_px_push(p, "addresses");
	for (size_t i = 0; i < list->n; i++) {
		const struct bm_ynode *v = list->kids[i];
		size_t m = bm_px_push_idx(p, i);
		const char *s, *slash;
		char ipbuf[64];
		struct bm_ip ip;
		long plen = -1;

		if (bm_px_str(p, v, &s) != 1)
			goto next;
		slash = strchr(s, '/');
		ipbuf[0] = '\0';
		if (!slash) {
			snprintf(ipbuf, sizeof(ipbuf), "%.*s", (int)sizeof(ipbuf) - 1, s);
		} else if ((size_t)(slash - s) < sizeof(ipbuf)) {
			char *end = NULL;

			memcpy(ipbuf, s, (size_t)(slash - s));
			ipbuf[slash - s] = '\0';
			if (slash[1] >= '0' && slash[1] <= '9' && strlen(slash + 1) <= 3)
				plen = strtol(slash + 1, &end, 10);
			if (plen >= 0 && *end)
				plen = -1;
		}
		if (strlen(s) >= sizeof(ipbuf) || bm_ip_parse(ipbuf, &ip) ||
		    (slash && (plen < 0 || plen > (bm_ip_is_v4(&ip) ? 32 : 128)))) {
			bm_px_err(p, v->line, "\"%.64s\" is not an IP address or CIDR", s);
		} else if (slash && plen != (bm_ip_is_v4(&ip) ? 32 : 128)) {
			bm_px_unsup(p, v->line, "=%.64s", s);
		} else {
			struct bm_ip *slot = bm_px_grow(p, &x->addresses, &x->n_addresses,
							sizeof(*x->addresses));

			if (slot)
				*slot = ip;
		}
next:
		bm_px_pop(p, m);
	}
	bm_px_pop(p, mark);
}

/* Istio protocol names (case-insensitive, as Istio parses them) and their L4 protocol. */
static int se_protocol(const char *s, enum bm_l4proto *out)
{
	static const char *const names[] = { "HTTP",  "HTTPS", "GRPC",	"GRPC-WEB", "HTTP2",
					     "HTTP_PROXY", "TCP", "TLS",   "MONGO",    "MYSQL",
					     "REDIS", "UDP",   NULL };

	for (int i = 0; names[i]; i++)
		if (!strcasecmp(s, names[i])) {
			*out = !strcasecmp(s, "UDP") ? BM_PROTO_UDP : BM_PROTO_TCP;
			return 0;
		}
	return -1;
}

static void se_ports(struct bm_px *p, const struct bm_ynode *spec, struct bm_service_entry *x)
{
	static const char *const known[] = { "number", "protocol", "name", "targetPort", NULL };
	const struct bm_ynode *list = NULL;
	size_t mark;

	if (bm_px_fseq(p, spec, "ports", &list) != 1)
		return;
	mark = bm_px_push(p, "ports");
	for (size_t i = 0; i < list->n; i++) {
		const struct bm_ynode *it = list->kids[i];
		size_t m = bm_px_push_idx(p, i);
		struct bm_se_port *sp;

		if (bm_px_map(p, it) != 1 ||
		    !(sp = bm_px_grow(p, &x->ports, &x->n_ports, sizeof(*x->ports))))
			goto next;
		bm_px_unknown(p, it, known);
		sp->loc.file = p->file;
		sp->loc.line = it->line;
		sp->proto = BM_PROTO_TCP; /* protocol unset: Istio treats the port as TCP */
		if (bm_px_fport(p, it, "number", &sp->number) == 0)
			bm_px_missing(p, it->line, "number");
		if (bm_px_fdup(p, it, "protocol", &sp->protocol) == 1 &&
		    se_protocol(sp->protocol, &sp->proto))
			bm_px_ferr(p, it, "protocol",
				  "\"%.64s\" is not an Istio protocol (HTTP, HTTPS, GRPC, "
				  "GRPC-WEB, HTTP2, HTTP_PROXY, TCP, TLS, MONGO, MYSQL, REDIS, UDP)",
				  sp->protocol);
		if (bm_px_fdup(p, it, "name", &sp->name) == 1 && !bm_cfg_is_dns_label(sp->name))
			bm_px_ferr(p, it, "name", "\"%.64s\" is not a valid port name (RFC 1123 label)",
				   sp->name);
		bm_px_fport(p, it, "targetPort", &sp->target_port);
		for (size_t j = 0; j + 1 < x->n_ports; j++) {
			const struct bm_se_port *o = &x->ports[j];

			if (sp->number && o->number == sp->number)
				bm_px_err(p, it->line, "port number %u used twice (also line %d)",
					  sp->number, o->loc.line);
			if (sp->name && o->name && !strcmp(sp->name, o->name))
				bm_px_err(p, it->line, "port name \"%.64s\" used twice (also line %d)",
					  sp->name, o->loc.line);
		}
next:
		bm_px_pop(p, m);
	}
	bm_px_pop(p, mark);
}

static void se_endpoints(struct bm_px *p, const struct bm_ynode *spec, struct bm_service_entry *x,
			 bool dns)
{
	const struct bm_ynode *list = NULL;
	size_t mark;

	if (bm_px_fseq(p, spec, "endpoints", &list) != 1)
		return;
	mark = bm_px_push(p, "endpoints");
	for (size_t i = 0; i < list->n; i++) {
		const struct bm_ynode *it = list->kids[i];
		size_t m = bm_px_push_idx(p, i);
		struct bm_workload_entry *w;

		if (bm_px_map(p, it) == 1 &&
		    (w = bm_px_grow(p, &x->endpoints, &x->n_endpoints, sizeof(*x->endpoints)))) {
			w->meta.ns = bm_px_strdup(p, x->meta.ns ? x->meta.ns : "default");
			w->meta.loc.file = p->file;
			w->meta.loc.line = it->line;
			we_body(p, it, w, dns ? WE_SE_DNS : WE_SE_IP);
			/* Endpoint ports are keyed by the service entry's port names. */
			for (size_t j = 0; j < w->n_ports; j++) {
				bool found = false;

				for (size_t k = 0; k < x->n_ports && !found; k++)
					found = x->ports[k].name && !strcmp(x->ports[k].name,
									    w->ports[j].name);
				if (!found)
					bm_px_ferr(p, it, "ports", "\"%.64s\" is not a port name of "
								   "this ServiceEntry", w->ports[j].name);
			}
		}
		bm_px_pop(p, m);
	}
	bm_px_pop(p, mark);
}

void bm_cfg_service_entry(struct bm_px *p, const struct bm_ynode *root)
{
	static const char *const known[] = { "hosts",	  "addresses",	      "ports",
					     "location",  "resolution",	      "endpoints",
					     "workloadSelector", "exportTo", NULL };
	static const char *const locs[] = { "MESH_EXTERNAL", "MESH_INTERNAL", NULL };
	static const char *const res[] = { "NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", NULL };
	static const char *const wsk[] = { "labels", NULL };
	struct bm_service_entry x = { .location = BM_LOC_EXTERNAL, .resolution = BM_RES_NONE };
	const struct bm_ynode *spec = NULL, *ws = NULL;
	bool usable = true;
	int e;
	size_t mark;

	bm_px_meta(p, root, &x.meta, BM_NAME_SUBDOMAIN, false);
	bm_px_unknown(p, root, bm_cfg_top_keys);
	if (bm_px_fmap(p, root, "spec", &spec) == 0)
		bm_px_missing(p, root->line, "spec");
	if (!spec || spec->type != BM_Y_MAP)
		goto done;
	mark = bm_px_push(p, "spec");
	bm_px_unknown(p, spec, known);
	se_hosts(p, spec, &x);
	se_addresses(p, spec, &x);
	se_ports(p, spec, &x);
	if (bm_px_fenum(p, spec, "location", locs, &e) == 1)
		x.location = e ? BM_LOC_INTERNAL : BM_LOC_EXTERNAL;
	if (bm_px_fenum(p, spec, "resolution", res, &e) == 1) {
		if (e >= 2) {
			size_t m = bm_px_push(p, "resolution");

			bm_px_unsup(p, bm_px_key_line(spec, "resolution"), "=%s", res[e]);
			bm_px_pop(p, m);
			usable = false; /* the essential part: left out of the model */
		}
		x.resolution = e == 1 ? BM_RES_STATIC : BM_RES_NONE;
	}
	se_endpoints(p, spec, &x, !usable);
	if (bm_px_fmap(p, spec, "workloadSelector", &ws) == 1) {
		size_t m = bm_px_push(p, "workloadSelector");

		bm_px_unknown(p, ws, wsk);
		if (bm_px_flabels(p, ws, "labels", &x.workload_selector) >= 0)
			x.has_workload_selector = true;
		bm_px_pop(p, m);
	}
	if (bm_px_val(spec, "endpoints") && ws)
		bm_px_err(p, spec->line, "endpoints and workloadSelector are exclusive");
	if (usable && x.resolution == BM_RES_NONE && x.n_endpoints)
		bm_px_ferr(p, spec, "endpoints", "not allowed with resolution NONE (use STATIC)");
	bm_px_export_to(p, spec);
	bm_px_pop(p, mark);
done:
	if (!usable) {
		bm_cfg_service_entry_free(&x);
		return;
	}
	BM_PX_COMMIT(p, p->c->service_entries, p->c->n_service_entries, x,
		     bm_cfg_service_entry_free);
}
