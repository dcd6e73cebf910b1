/* bm-lab-render kinds: what the lab checks and reads in Services, Deployments and Pods (ports,
 * labels, selectors, IP families). Every other kind passes through unread. */
#include "lab_render.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Label names and values: at most 63 of [-A-Za-z0-9_.], alphanumeric at both ends. */
static int valid_label_part(const char *s, size_t len, int may_be_empty)
{
	if (!len)
		return may_be_empty;
	if (len > 63 || !alnum(s[0]) || !alnum(s[len - 1]))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return 0;
	return 1;
}

static int valid_label_key(const char *k)
{
	const char *slash = strrchr(k, '/');

	if (slash) {
		size_t plen = (size_t)(slash - k);

		if (!plen || plen > 253)
			return 0;
		for (size_t i = 0; i < plen; i++)
			if (!alnum(k[i]) && k[i] != '-' && k[i] != '.')
				return 0;
		k = slash + 1;
	}
	return valid_label_part(k, strlen(k), 0);
}

static int check_labels(char *err, const struct lab_obj *o, const struct bm_ynode *m,
			const char *what)
{
	if (!m || bm_y_is_null(m))
		return 0;
	if (m->type != BM_Y_MAP)
		return lab_err(err, o, m, "%s must be a mapping", what);
	for (size_t i = 0; i + 1 < m->n; i += 2) {
		const char *k = m->kids[i]->str, *v = bm_y_str(m->kids[i + 1]);

		if (!valid_label_key(k))
			return lab_err(err, o, m->kids[i], "%s: \"%.80s\" is not a valid label key", what, k);
		if (!v || !valid_label_part(v, strlen(v), 1))
			return lab_err(err, o, m->kids[i + 1], "%s: the value of \"%.80s\" is not a valid label value",
				       what, k);
	}
	return 0;
}

static int check_proto(char *err, const struct lab_obj *o, const struct bm_ynode *n)
{
	const char *p = bm_y_str(n);

	if (!n || bm_y_is_null(n))
		return 0;
	if (!p || (strcmp(p, "TCP") && strcmp(p, "UDP") && strcmp(p, "SCTP")))
		return lab_err(err, o, n, "protocol must be TCP, UDP or SCTP");
	return 0;
}

static const char *proto_of(const struct bm_ynode *port_map)
{
	const char *p = bm_y_str(bm_y_get(port_map, "protocol"));

	return p && *p ? p : "TCP";
}

int lab_node_index(const struct lab *l, const char *node_name)
{
	size_t plen = strlen(l->prefix);
	char *end;
	long i;

	if (!node_name || strncmp(node_name, l->prefix, plen) || strncmp(node_name + plen, "-node", 5))
		return 0;
	i = strtol(node_name + plen + 5, &end, 10);
	if (*end || i < 1 || i > l->nodes || node_name[plen + 5] == '0')
		return 0;
	return (int)i;
}

static int check_pod_spec(struct lab *l, char *err, const struct lab_obj *o,
			  const struct bm_ynode *spec)
{
	const struct bm_ynode *cs, *n;

	if (!spec || spec->type != BM_Y_MAP)
		return lab_err(err, o, spec, "the pod spec is missing or not a mapping");
	cs = bm_y_get(spec, "containers");
	if (!cs || cs->type != BM_Y_SEQ || !cs->n)
		return lab_err(err, o, spec, "the pod spec needs a list of containers");
	for (size_t c = 0; c < cs->n; c++) {
		const struct bm_ynode *ports = bm_y_get(cs->kids[c], "ports");

		if (cs->kids[c]->type != BM_Y_MAP)
			return lab_err(err, o, cs->kids[c], "a container must be a mapping");
		if (!ports || bm_y_is_null(ports))
			continue;
		if (ports->type != BM_Y_SEQ)
			return lab_err(err, o, ports, "container ports must be a list");
		for (size_t i = 0; i < ports->n; i++) {
			long v;

			if (lab_int(bm_y_get(ports->kids[i], "containerPort"), 1, 65535, &v))
				return lab_err(err, o, ports->kids[i], "containerPort must be an integer in 1-65535");
			if (check_proto(err, o, bm_y_get(ports->kids[i], "protocol")))
				return -1;
		}
	}
	n = bm_y_get(spec, "nodeName");
	if (n && !bm_y_is_null(n) && !lab_node_index(l, bm_y_str(n)))
		return lab_err(err, o, n, "spec.nodeName \"%.80s\" is not a node of this lab (%s-node1..%d)",
			       bm_y_str(n) ? bm_y_str(n) : "?", l->prefix, l->nodes);
	n = bm_y_get(spec, "hostNetwork");
	if (n && bm_y_str(n) && !strcmp(bm_y_str(n), "true"))
		return lab_err(err, o, n, "hostNetwork pods are not supported by the lab");
	n = bm_y_get(spec, "serviceAccountName");
	if (n && !bm_y_is_null(n) && (!bm_y_str(n) || !valid_label_part(bm_y_str(n), n->len, 0)))
		return lab_err(err, o, n, "spec.serviceAccountName is not a valid name");
	return 0;
}

static int is_ip_in(const char *s, int *family)
{
	unsigned char a[16];
	static const unsigned char v6net[14] = { 0xfd, 0, 0, 0x10, 0, 0x96 };

	if (inet_pton(AF_INET, s, a) == 1) {
		*family = 4;
		return a[0] == 10 && a[1] == 96;
	}
	if (inet_pton(AF_INET6, s, a) == 1) {
		*family = 6;
		return !memcmp(a, v6net, sizeof(v6net));
	}
	*family = 0;
	return 0;
}

/* targetPort: an unquoted number, or a port name (at most 15 characters, with a letter). */
static int bad_target_port(const struct bm_ynode *tp)
{
	const char *s = bm_y_str(tp);
	long v;

	if (!s)
		return 1;
	if (!tp->quoted && strspn(s, "0123456789") == tp->len)
		return lab_int(tp, 1, 65535, &v);
	if (!tp->len || tp->len > 15 || strspn(s, "0123456789") == tp->len)
		return 1;
	for (size_t i = 0; i < tp->len; i++)
		if (!alnum(s[i]) && s[i] != '-')
			return 1;
	return 0;
}

static int check_service(char *err, const struct lab_obj *o)
{
	const struct bm_ynode *spec = bm_y_get(o->root, "spec"), *n;
	const char *s;

	if (!spec || bm_y_is_null(spec))
		return 0;
	if (spec->type != BM_Y_MAP)
		return lab_err(err, o, spec, "spec must be a mapping");
	s = bm_y_str(bm_y_get(spec, "type"));
	if (s && strcmp(s, "ClusterIP") && strcmp(s, "NodePort") && strcmp(s, "LoadBalancer") &&
	    strcmp(s, "ExternalName"))
		return lab_err(err, o, bm_y_get(spec, "type"), "unknown Service type \"%.40s\"", s);
	n = bm_y_get(spec, "ports");
	if (n && !bm_y_is_null(n)) {
		if (n->type != BM_Y_SEQ)
			return lab_err(err, o, n, "spec.ports must be a list");
		for (size_t i = 0; i < n->n; i++) {
			const struct bm_ynode *p = n->kids[i], *tp = bm_y_get(p, "targetPort");
			long v;

			if (lab_int(bm_y_get(p, "port"), 1, 65535, &v))
				return lab_err(err, o, p, "a Service port needs port: 1-65535");
			if (check_proto(err, o, bm_y_get(p, "protocol")))
				return -1;
			if (tp && !bm_y_is_null(tp) && bad_target_port(tp))
				return lab_err(err, o, tp, "targetPort must be 1-65535 or a port name");
		}
	}
	if (check_labels(err, o, bm_y_get(spec, "selector"), "spec.selector"))
		return -1;
	s = bm_y_str(bm_y_get(spec, "ipFamilyPolicy"));
	if (s && strcmp(s, "SingleStack") && strcmp(s, "PreferDualStack") &&
	    strcmp(s, "RequireDualStack"))
		return lab_err(err, o, bm_y_get(spec, "ipFamilyPolicy"), "unknown ipFamilyPolicy");
	n = bm_y_get(spec, "ipFamilies");
	if (n && !bm_y_is_null(n)) {
		if (n->type != BM_Y_SEQ || n->n > 2)
			return lab_err(err, o, n, "ipFamilies must be a list of at most two families");
		for (size_t i = 0; i < n->n; i++) {
			s = bm_y_str(n->kids[i]);
			if (!s || (strcmp(s, "IPv4") && strcmp(s, "IPv6")))
				return lab_err(err, o, n->kids[i], "ipFamilies entries are IPv4 or IPv6");
		}
		if (n->n == 2 && !strcmp(n->kids[0]->str, n->kids[1]->str))
			return lab_err(err, o, n, "ipFamilies lists a family twice");
	}
	/* Given cluster IPs are kept, but must be in the lab's service ranges. */
	const struct bm_ynode *one = bm_y_get(spec, "clusterIP"), *many = bm_y_get(spec, "clusterIPs");
	const struct bm_ynode *given[3] = { one };
	size_t n_given = 1;

	if (many && many->type == BM_Y_SEQ)
		for (size_t i = 0; i < many->n && n_given < 3; i++)
			given[n_given++] = many->kids[i];
	else if (many && !bm_y_is_null(many))
		return lab_err(err, o, many, "clusterIPs must be a list");
	for (size_t i = 0; i < n_given; i++) {
		int fam;

		s = bm_y_str(given[i]);
		if (!given[i] || bm_y_is_null(given[i]) || !strcmp(s ? s : "", "None"))
			continue;
		if (!s || !is_ip_in(s, &fam))
			return lab_err(err, o, given[i],
				       "cluster IP \"%.60s\" is not in the lab's service ranges 10.96.0.0/16 and fd00:10:96::/112",
				       s ? s : "?");
	}
	return 0;
}

static int check_deployment(struct lab *l, char *err, const struct lab_obj *o)
{
	const struct bm_ynode *spec = bm_y_get(o->root, "spec"), *n, *labels, *sel;
	long v;

	if (!spec || spec->type != BM_Y_MAP)
		return lab_err(err, o, spec, "spec is missing or not a mapping");
	n = bm_y_get(spec, "replicas");
	if (n && !bm_y_is_null(n) && lab_int(n, 0, LAB_MAX_REPLICAS, &v))
		return lab_err(err, o, n, "spec.replicas must be an integer in 0-%d", LAB_MAX_REPLICAS);
	n = bm_y_get(spec, "template");
	if (!n || n->type != BM_Y_MAP)
		return lab_err(err, o, spec, "spec.template is missing");
	labels = lab_path(n, "metadata.labels");
	if (check_labels(err, o, labels, "spec.template.metadata.labels"))
		return -1;
	sel = lab_path(spec, "selector.matchLabels");
	if (check_labels(err, o, sel, "spec.selector.matchLabels"))
		return -1;
	if (sel && sel->type == BM_Y_MAP && !lab_labels_match(sel, labels))
		return lab_err(err, o, sel, "spec.selector does not match the template's labels");
	return check_pod_spec(l, err, o, bm_y_get(n, "spec"));
}

static int check_pod(struct lab *l, char *err, const struct lab_obj *o)
{
	const char *end;

	if (!strcmp(o->name, "ul"))
		return lab_err(err, o, NULL, "the pod name \"ul\" is reserved by the lab");
	if (!strncmp(o->name, "node", 4) && o->name[4]) {
		end = o->name + 4 + strspn(o->name + 4, "0123456789");
		if (!*end)
			return lab_err(err, o, NULL, "pod names node<N> are reserved by the lab");
	}
	if (check_labels(err, o, lab_path(o->root, "metadata.labels"), "metadata.labels"))
		return -1;
	return check_pod_spec(l, err, o, bm_y_get(o->root, "spec"));
}

int lab_validate(struct lab *l, const struct lab_obj *o, char *err)
{
	if (lab_is(o, "", "Service"))
		return check_service(err, o);
	if (lab_is(o, "apps", "Deployment"))
		return check_deployment(l, err, o);
	if (lab_is(o, "", "Pod"))
		return check_pod(l, err, o);
	return 0;
}

const struct bm_ynode *lab_pod_template_meta(const struct lab_obj *o)
{
	return lab_is(o, "", "Pod") ? bm_y_get(o->root, "metadata") :
				      lab_path(o->root, "spec.template.metadata");
}

const struct bm_ynode *lab_pod_template_spec(const struct lab_obj *o)
{
	return lab_is(o, "", "Pod") ? bm_y_get(o->root, "spec") :
				      lab_path(o->root, "spec.template.spec");
}

long lab_replicas(const struct lab_obj *o)
{
	long v = 1;

	if (lab_is(o, "apps", "Deployment"))
		lab_int(lab_path(o->root, "spec.replicas"), 0, LAB_MAX_REPLICAS, &v);
	return v;
}

/* Every key=value of selector is in labels. */
int lab_labels_match(const struct bm_ynode *selector, const struct bm_ynode *labels)
{
	if (!selector || selector->type != BM_Y_MAP)
		return 1;
	for (size_t i = 0; i + 1 < selector->n; i += 2) {
		const char *want = bm_y_str(selector->kids[i + 1]);
		const char *have = bm_y_str(bm_y_get(labels, selector->kids[i]->str));

		if (!want || !have || strcmp(want, have))
			return 0;
	}
	return 1;
}

/* The ports a pod's echo server listens on for one protocol: its containerPorts, plus the
 * target ports of the Services that select it ("5000,8080", or "-"). */
void lab_pod_ports(struct lab *l, const struct lab_pod *p, const char *proto, char *out,
		   size_t outlen)
{
	static uint8_t seen[65536 / 8];
	const struct bm_ynode *spec = lab_pod_template_spec(p->src);
	const struct bm_ynode *labels = bm_y_get(lab_pod_template_meta(p->src), "labels");
	const struct bm_ynode *cs = bm_y_get(spec, "containers");
	size_t off = 0;
	long v;

	memset(seen, 0, sizeof(seen));
	for (size_t c = 0; cs && c < cs->n; c++) {
		const struct bm_ynode *ports = bm_y_get(cs->kids[c], "ports");

		for (size_t i = 0; ports && ports->type == BM_Y_SEQ && i < ports->n; i++)
			if (!strcmp(proto_of(ports->kids[i]), proto) &&
			    !lab_int(bm_y_get(ports->kids[i], "containerPort"), 1, 65535, &v))
				seen[v / 8] |= (uint8_t)(1u << (v % 8));
	}
	for (size_t s = 0; s < l->n_objs; s++) {
		const struct lab_obj *o = &l->objs[s];
		const struct bm_ynode *sel = lab_path(o->root, "spec.selector");
		const struct bm_ynode *ports = lab_path(o->root, "spec.ports");

		if (!lab_is(o, "", "Service") || strcmp(o->ns, p->ns) || !sel ||
		    sel->type != BM_Y_MAP || !sel->n || !lab_labels_match(sel, labels))
			continue;
		for (size_t i = 0; ports && ports->type == BM_Y_SEQ && i < ports->n; i++) {
			const struct bm_ynode *sp = ports->kids[i], *tp = bm_y_get(sp, "targetPort");

			if (strcmp(proto_of(sp), proto))
				continue;
			if (tp && !bm_y_is_null(tp) && lab_int(tp, 1, 65535, &v))
				continue; /* named: it is one of the containerPorts already */
			if ((!tp || bm_y_is_null(tp)) && lab_int(bm_y_get(sp, "port"), 1, 65535, &v))
				continue;
			seen[v / 8] |= (uint8_t)(1u << (v % 8));
		}
	}
	out[0] = '\0';
	for (v = 1; v < 65536; v++) {
		if (!(seen[v / 8] & (1u << (v % 8))))
			continue;
		int w = snprintf(out + off, outlen - off, "%s%ld", off ? "," : "", v);

		if (w < 0 || (size_t)w >= outlen - off)
			break;
		off += (size_t)w;
	}
	if (!off)
		snprintf(out, outlen, "-");
}

/* Which families a Service wants, and which comes first (spec.ipFamilies order, else the
 * family of a given cluster IP, else IPv4). Dual-stack policies add the missing family. */
void lab_svc_families(const struct lab_obj *o, int *want4, int *want6, int *v6_first)
{
	const struct bm_ynode *spec = bm_y_get(o->root, "spec");
	const struct bm_ynode *fams = bm_y_get(spec, "ipFamilies");
	const char *pol = bm_y_str(bm_y_get(spec, "ipFamilyPolicy"));
	const char *ip = bm_y_str(bm_y_get(spec, "clusterIP"));
	const struct bm_ynode *ips = bm_y_get(spec, "clusterIPs");
	int dual = pol && (!strcmp(pol, "PreferDualStack") || !strcmp(pol, "RequireDualStack"));
	int fam;

	*want4 = *want6 = *v6_first = 0;
	if (fams && fams->type == BM_Y_SEQ && fams->n) {
		for (size_t i = 0; i < fams->n; i++) {
			const char *f = bm_y_str(fams->kids[i]);

			if (f && !strcmp(f, "IPv4"))
				*want4 = 1;
			if (f && !strcmp(f, "IPv6"))
				*want6 = 1;
		}
		*v6_first = bm_y_str(fams->kids[0]) && !strcmp(fams->kids[0]->str, "IPv6");
	} else {
		if (ips && ips->type == BM_Y_SEQ && ips->n && bm_y_str(ips->kids[0]))
			ip = ips->kids[0]->str;
		if (ip && is_ip_in(ip, &fam) && fam == 6)
			*want6 = *v6_first = 1;
		else
			*want4 = 1;
	}
	for (size_t i = 0; ips && ips->type == BM_Y_SEQ && i < ips->n; i++)
		if (bm_y_str(ips->kids[i]) && is_ip_in(ips->kids[i]->str, &fam))
			*(fam == 4 ? want4 : want6) = 1;
	if (dual)
		*want4 = *want6 = 1;
}
