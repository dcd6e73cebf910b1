/* Kubernetes kinds into the model: Namespace, Service and Pod, checked as strictly as the API
 * server would (types, ranges, names), plus what the mesh cannot honour reported unsupported. */
#include "config_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- Namespace ---- */

void bm_cfg_namespace_free(struct bm_namespace *x)
{
	bm_cfg_meta_free(&x->meta);
}

void bm_cfg_namespace(struct bm_px *p, const struct bm_ynode *root)
{
	struct bm_namespace x = { 0 };

	bm_px_meta(p, root, &x.meta, BM_NAME_LABEL, true);
	bm_px_unknown(p, root, bm_cfg_top_keys);
	BM_PX_COMMIT(p, p->c->namespaces, p->c->n_namespaces, x, bm_cfg_namespace_free);
}

/* ---- ConfigMap: only istio-system/bpfmesh, the mesh's settings, is read ---- */

void bm_cfg_configmap(struct bm_px *p, const struct bm_ynode *root)
{
	static const char *const top[] = { "apiVersion", "kind", "metadata", "data", "immutable",
					   NULL };
	static const char *const keys[] = { "sameNodeBypass", NULL };
	const struct bm_ynode *data = NULL;
	struct bm_meta m = { 0 };
	const char *v;

	if (bm_px_meta(p, root, &m, BM_NAME_SUBDOMAIN, false) || p->errors)
		goto done;
	if (strcmp(m.name, "bpfmesh") || strcmp(m.ns, "istio-system")) {
		/* At the kind's line, as the loader reports every kind it does not read. */
		struct bm_loc at = { .file = p->file, .line = bm_px_key_line(root, "kind") };

		bm_config_diag(p->c, BM_DIAG_WARNING, &at,
			       "ConfigMap %s/%s ignored: the mesh reads only ConfigMap "
			       "istio-system/bpfmesh",
			       m.ns, m.name);
		goto done;
	}
	bm_px_unknown(p, root, top);
	if (bm_px_fmap(p, root, "data", &data) == 1) {
		size_t mark = bm_px_push(p, "data");

		bm_px_unknown(p, data, keys);
		if (bm_px_fstr(p, data, "sameNodeBypass", &v) == 1) {
			if (!strcmp(v, "true") || !strcmp(v, "false")) {
				p->c->mesh.has_bypass = true;
				p->c->mesh.bypass = !strcmp(v, "true");
			} else {
				size_t m2 = bm_px_push(p, "sameNodeBypass");

				bm_px_err(p, bm_px_key_line(data, "sameNodeBypass"),
					  "\"%.32s\" is neither \"true\" nor \"false\"", v);
				bm_px_pop(p, m2);
			}
		}
		bm_px_pop(p, mark);
	}
	p->c->mesh.loc = m.loc;
done:
	bm_cfg_meta_free(&m);
}

/* ---- Service ---- */

void bm_cfg_service_free(struct bm_service *x)
{
	bm_cfg_meta_free(&x->meta);
	for (size_t i = 0; i < x->n_ports; i++) {
		free(x->ports[i].name);
		free(x->ports[i].target_name);
		free(x->ports[i].app_protocol);
	}
	free(x->ports);
	bm_cfg_labels_free(&x->selector);
}

/* targetPort is an IntOrString: a plain integer is a port, a string is a port name. */
static void svc_target_port(struct bm_px *p, const struct bm_ynode *v, struct bm_svc_port *sp)
{
	size_t m = bm_px_push(p, "targetPort");

	if (v->type == BM_Y_SCALAR && !v->quoted &&
	    ((v->str[0] >= '0' && v->str[0] <= '9') || v->str[0] == '-' || v->str[0] == '+')) {
		bm_px_port(p, v, &sp->target_port);
	} else if (v->type == BM_Y_SCALAR) {
		const char *s;

		if (bm_px_str(p, v, &s) == 1) {
			if (!bm_cfg_is_iana_svc_name(s))
				bm_px_err(p, v->line,
					  "\"%.64s\" is not a port number (write it unquoted) nor a port "
					  "name (IANA service name: [a-z0-9-], a letter, at most 15)",
					  s);
			else
				sp->target_name = bm_px_strdup(p, s);
		}
	} else {
		bm_px_err(p, v->line, "expected a port number or name, got %s",
			  v->type == BM_Y_MAP ? "a map" : "a list");
	}
	bm_px_pop(p, m);
}

static void svc_ports(struct bm_px *p, const struct bm_ynode *spec, struct bm_service *x)
{
	static const char *const known[] = { "name", "protocol", "port", "targetPort",
					     "appProtocol", NULL };
	const struct bm_ynode *ports = NULL;
	size_t mark;

	if (bm_px_fseq(p, spec, "ports", &ports) != 1)
		return;
	mark = bm_px_push(p, "ports");
	for (size_t i = 0; i < ports->n; i++) {
		const struct bm_ynode *it = ports->kids[i], *tp;
		size_t m = bm_px_push_idx(p, i);
		struct bm_svc_port *sp;

		if (bm_px_map(p, it) != 1 || !(sp = bm_px_grow(p, &x->ports, &x->n_ports,
								  sizeof(*x->ports)))) {
			bm_px_pop(p, m);
			continue;
		}
		sp->loc.file = p->file;
		sp->loc.line = it->line;
		sp->proto = BM_PROTO_TCP;
		bm_px_unknown(p, it, known);
		if (bm_px_fdup(p, it, "name", &sp->name) == 1 && !bm_cfg_is_dns_label(sp->name))
			bm_px_ferr(p, it, "name", "\"%.64s\" is not a valid port name (RFC 1123 label)",
				   sp->name);
		bm_px_fproto(p, it, "protocol", &sp->proto);
		if (bm_px_fport(p, it, "port", &sp->port) == 0)
			bm_px_missing(p, it->line, "port");
		tp = bm_px_val(it, "targetPort");
		if (tp)
			svc_target_port(p, tp, sp);
		else
			sp->target_port = sp->port;
		bm_px_fdup(p, it, "appProtocol", &sp->app_protocol);
		if (x->n_ports > 1 && !sp->name)
			bm_px_ferr(p, it, "name", "required when a Service has several ports");
		for (size_t j = 0; j + 1 < x->n_ports; j++) {
			const struct bm_svc_port *o = &x->ports[j];

			if (sp->name && o->name && !strcmp(o->name, sp->name))
				bm_px_ferr(p, it, "name", "\"%.64s\" used twice (also line %d)",
					   sp->name, o->loc.line);
			if (sp->port && o->port == sp->port && o->proto == sp->proto)
				bm_px_err(p, it->line, "port %u/%s used twice (also line %d)", sp->port,
					  sp->proto == BM_PROTO_UDP ? "UDP" :
					  sp->proto == BM_PROTO_SCTP ? "SCTP" : "TCP", o->loc.line);
		}
		bm_px_pop(p, m);
	}
	/* The first port may be unnamed only while it is alone. */
	if (x->n_ports > 1 && !x->ports[0].name) {
		size_t m = bm_px_push_idx(p, 0);

		bm_px_ferr(p, ports->kids[0], "name", "required when a Service has several ports");
		bm_px_pop(p, m);
	}
	bm_px_pop(p, mark);
}

/* clusterIP and clusterIPs: "None" is headless, "" none yet, else one address per family. */
static void svc_cluster_ips(struct bm_px *p, const struct bm_ynode *spec, struct bm_service *x)
{
	const char *one = NULL;
	const struct bm_ynode *list = NULL;
	int r1 = bm_px_fstr(p, spec, "clusterIP", &one);
	int r2 = bm_px_fseq(p, spec, "clusterIPs", &list);
	size_t mark;

	if (r1 == 1 && strcmp(one, "None") && one[0]) {
		size_t m = bm_px_push(p, "clusterIP");

		if (bm_px_ip(p, bm_px_val(spec, "clusterIP"), &x->cluster_ips[0]) == 1)
			x->n_cluster_ips = 1;
		bm_px_pop(p, m);
	}
	x->headless = r1 == 1 && !strcmp(one, "None");
	if (r2 != 1)
		return;
	mark = bm_px_push(p, "clusterIPs");
	x->n_cluster_ips = 0;
	for (size_t i = 0; i < list->n; i++) {
		const struct bm_ynode *v = list->kids[i];
		size_t m = bm_px_push_idx(p, i);
		const char *s;

		if (bm_px_str(p, v, &s) != 1) {
			bm_px_pop(p, m);
			continue;
		}
		if (i == 0 && r1 == 1 && strcmp(s, one))
			bm_px_err(p, v->line, "\"%.64s\" differs from spec.clusterIP \"%.64s\"", s, one);
		if (!strcmp(s, "None") || !s[0]) {
			if (list->n > 1)
				bm_px_err(p, v->line, "\"%s\" must be the only entry", s);
			x->headless = !strcmp(s, "None");
		} else if (i >= 2) {
			bm_px_err(p, v->line, "at most two addresses (one per family)");
		} else if (bm_px_ip(p, v, &x->cluster_ips[i]) == 1) {
			if (i == 1 && bm_ip_is_v4(&x->cluster_ips[0]) == bm_ip_is_v4(&x->cluster_ips[1]))
				bm_px_err(p, v->line, "a second address of the same family");
			x->n_cluster_ips = i + 1;
		}
		bm_px_pop(p, m);
	}
	bm_px_pop(p, mark);
}

static void svc_families(struct bm_px *p, const struct bm_ynode *spec)
{
	static const char *const fam[] = { "IPv4", "IPv6", NULL };
	static const char *const pol[] = { "SingleStack", "PreferDualStack", "RequireDualStack",
					   NULL };
	const struct bm_ynode *list = NULL;
	int f, seen = 0;

	bm_px_fenum(p, spec, "ipFamilyPolicy", pol, &f);
	if (bm_px_fseq(p, spec, "ipFamilies", &list) != 1)
		return;
	size_t mark = bm_px_push(p, "ipFamilies");

	for (size_t i = 0; i < list->n; i++) {
		size_t m = bm_px_push_idx(p, i);

		if (bm_px_enum(p, list->kids[i], fam, &f) == 1) {
			if (seen & (1 << f))
				bm_px_err(p, list->kids[i]->line, "%s listed twice", fam[f]);
			seen |= 1 << f;
		}
		bm_px_pop(p, m);
	}
	bm_px_pop(p, mark);
}

void bm_cfg_service(struct bm_px *p, const struct bm_ynode *root)
{
	static const char *const known[] = {
		"type",	   "clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy",
		"ports",	   "selector",	"sessionAffinity",	    "publishNotReadyAddresses",
		"internalTrafficPolicy", "externalTrafficPolicy", "externalName",	NULL
	};
	static const char *const types[] = { "ClusterIP", "NodePort", "LoadBalancer", "ExternalName",
					     NULL };
	static const char *const affinity[] = { "None", "ClientIP", NULL };
	static const char *const policy[] = { "Cluster", "Local", NULL };
	static const char *const policies[] = { "internalTrafficPolicy", "externalTrafficPolicy",
						NULL };
	struct bm_service x = { 0 };
	const struct bm_ynode *spec = NULL;
	int type = 0, e;
	bool b;
	size_t mark;

	bm_px_meta(p, root, &x.meta, BM_NAME_1035, false);
	bm_px_unknown(p, root, bm_cfg_top_keys);
	if (bm_px_fmap(p, root, "spec", &spec) == 0)
		bm_px_missing(p, root->line, "spec");
	if (!spec || spec->type != BM_Y_MAP)
		goto done;
	mark = bm_px_push(p, "spec");
	bm_px_unknown(p, spec, known);
	if (bm_px_fenum(p, spec, "type", types, &type) == 1 && type != 0) {
		size_t m = bm_px_push(p, "type");

		bm_px_unsup(p, bm_px_key_line(spec, "type"), "=%s", types[type]);
		bm_px_pop(p, m);
	}
	svc_cluster_ips(p, spec, &x);
	svc_families(p, spec);
	svc_ports(p, spec, &x);
	if (bm_px_flabels(p, spec, "selector", &x.selector) == 1)
		x.has_selector = true;
	else if (bm_y_get(spec, "selector"))
		x.has_selector = true; /* "selector: {}" or null: present, selects everything */
	if (bm_px_fenum(p, spec, "sessionAffinity", affinity, &e) == 1 && e == 1) {
		size_t m = bm_px_push(p, "sessionAffinity");

		bm_px_unsup(p, bm_px_key_line(spec, "sessionAffinity"), "=ClientIP");
		bm_px_pop(p, m);
	}
	if (bm_px_fbool(p, spec, "publishNotReadyAddresses", &b) == 1 && b) {
		size_t m = bm_px_push(p, "publishNotReadyAddresses");

		bm_px_unsup(p, bm_px_key_line(spec, "publishNotReadyAddresses"), "=true");
		bm_px_pop(p, m);
	}
	for (const char *const *k = policies; *k; k++)
		if (bm_px_fenum(p, spec, *k, policy, &e) == 1 && e == 1) {
			size_t m = bm_px_push(p, *k);

			bm_px_unsup(p, bm_px_key_line(spec, *k), "=Local");
			bm_px_pop(p, m);
		}
	if (!x.n_ports && !x.headless && type != 3 && !bm_px_val(spec, "ports"))
		bm_px_ferr(p, spec, "ports", "required (only a headless Service may have none)");
	bm_px_pop(p, mark);
done:
	BM_PX_COMMIT(p, p->c->services, p->c->n_services, x, bm_cfg_service_free);
}

/* ---- Pod ---- */

void bm_cfg_pod_free(struct bm_pod *x)
{
	bm_cfg_meta_free(&x->meta);
	free(x->node_name);
	free(x->service_account);
	for (size_t i = 0; i < x->n_ports; i++)
		free(x->ports[i].name);
	free(x->ports);
}

static void pod_containers(struct bm_px *p, const struct bm_ynode *spec, struct bm_pod *x)
{
	const struct bm_ynode *cs = NULL;
	size_t mark;

	if (bm_px_fseq(p, spec, "containers", &cs) != 1)
		return;
	mark = bm_px_push(p, "containers");
	for (size_t i = 0; i < cs->n; i++) {
		const struct bm_ynode *ports = NULL;
		size_t m = bm_px_push_idx(p, i);

		if (bm_px_map(p, cs->kids[i]) == 1 && bm_px_fseq(p, cs->kids[i], "ports", &ports) == 1) {
			size_t mp = bm_px_push(p, "ports");

			for (size_t j = 0; j < ports->n; j++) {
				const struct bm_ynode *it = ports->kids[j];
				size_t mj = bm_px_push_idx(p, j);
				struct bm_container_port *cp;

				if (bm_px_map(p, it) == 1 &&
				    (cp = bm_px_grow(p, &x->ports, &x->n_ports, sizeof(*x->ports)))) {
					cp->proto = BM_PROTO_TCP;
					if (bm_px_fport(p, it, "containerPort", &cp->port) == 0)
						bm_px_missing(p, it->line, "containerPort");
					if (bm_px_fdup(p, it, "name", &cp->name) == 1 &&
					    !bm_cfg_is_iana_svc_name(cp->name))
						bm_px_ferr(p, it, "name",
							  "\"%.64s\" is not a valid port name (IANA "
							  "service name: [a-z0-9-], a letter, at most 15)",
							  cp->name);
					bm_px_fproto(p, it, "protocol", &cp->proto);
				}
				bm_px_pop(p, mj);
			}
			bm_px_pop(p, mp);
		}
		bm_px_pop(p, m);
	}
	bm_px_pop(p, mark);
}

static void pod_status(struct bm_px *p, const struct bm_ynode *st, struct bm_pod *x)
{
	const struct bm_ynode *ips = NULL, *conds = NULL;
	const char *phase = NULL, *s;
	bool not_ready = false;
	size_t mark;

	if (bm_px_fstr(p, st, "podIP", &s) == 1) {
		size_t m = bm_px_push(p, "podIP");

		if (bm_px_ip(p, bm_px_val(st, "podIP"), &x->ips[0]) == 1)
			x->n_ips = 1;
		bm_px_pop(p, m);
	}
	if (bm_px_fseq(p, st, "podIPs", &ips) == 1) {
		struct bm_ip first = x->ips[0];
		bool had = x->n_ips;

		mark = bm_px_push(p, "podIPs");
		x->n_ips = 0;
		for (size_t i = 0; i < ips->n; i++) {
			const struct bm_ynode *it = ips->kids[i], *ipn;
			size_t m = bm_px_push_idx(p, i);
			struct bm_ip ip;

			if (bm_px_map(p, it) == 1 && (ipn = bm_px_val(it, "ip"))) {
				size_t mi = bm_px_push(p, "ip");

				if (i >= 2)
					bm_px_err(p, it->line, "at most two addresses (one per family)");
				else if (bm_px_ip(p, ipn, &ip) == 1) {
					if (i == 0 && had && memcmp(&ip, &first, sizeof(ip)))
						bm_px_err(p, ipn->line, "differs from status.podIP");
					if (i == 1 && bm_ip_is_v4(&ip) == bm_ip_is_v4(&x->ips[0]))
						bm_px_err(p, ipn->line,
							  "a second address of the same family");
					x->ips[i] = ip;
					x->n_ips = i + 1;
				}
				bm_px_pop(p, mi);
			} else if (it->type == BM_Y_MAP) {
				bm_px_missing(p, it->line, "ip");
			}
			bm_px_pop(p, m);
		}
		bm_px_pop(p, mark);
	}
	bm_px_fstr(p, st, "phase", &phase);
	if (bm_px_fseq(p, st, "conditions", &conds) == 1) {
		mark = bm_px_push(p, "conditions");
		for (size_t i = 0; i < conds->n; i++) {
			const struct bm_ynode *it = conds->kids[i];
			const char *type = NULL, *status = NULL;
			size_t m = bm_px_push_idx(p, i);

			if (bm_px_map(p, it) == 1 && bm_px_fstr(p, it, "type", &type) == 1 &&
			    bm_px_fstr(p, it, "status", &status) == 1 && !strcmp(type, "Ready") &&
			    !strcmp(status, "False"))
				not_ready = true;
			bm_px_pop(p, m);
		}
		bm_px_pop(p, mark);
	}
	x->ready = phase && !strcmp(phase, "Running") && !not_ready;
}

void bm_cfg_pod(struct bm_px *p, const struct bm_ynode *root)
{
	struct bm_pod x = { 0 };
	const struct bm_ynode *spec = NULL, *st = NULL;
	size_t mark;

	bm_px_meta(p, root, &x.meta, BM_NAME_SUBDOMAIN, false);
	bm_px_unknown(p, root, bm_cfg_top_keys);
	/* Only what the mesh reads is checked: the rest of a Pod is its workload definition. */
	if (bm_px_fmap(p, root, "spec", &spec) == 1) {
		mark = bm_px_push(p, "spec");
		bm_px_fdup(p, spec, "nodeName", &x.node_name);
		if (bm_px_fdup(p, spec, "serviceAccountName", &x.service_account) == 0)
			bm_px_fdup(p, spec, "serviceAccount", &x.service_account);
		bm_px_fbool(p, spec, "hostNetwork", &x.host_network);
		pod_containers(p, spec, &x);
		bm_px_pop(p, mark);
	}
	if (!x.service_account)
		x.service_account = bm_px_strdup(p, "default");
	if (bm_px_fmap(p, root, "status", &st) == 1) {
		mark = bm_px_push(p, "status");
		pod_status(p, st, &x);
		bm_px_pop(p, mark);
	}
	BM_PX_COMMIT(p, p->c->pods, p->c->n_pods, x, bm_cfg_pod_free);
}
