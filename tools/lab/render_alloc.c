/* bm-lab-render allocations, kept in <state>/alloc between runs so that re-applying keeps
 * cluster IPs, pod names, uids, nodes and pod IPs: Services and Deployments reconciled here. */
#include "lab_render.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SVC4_FIRST 10      /* 10.96.0.10 */
#define SVC6_FIRST 0xa     /* fd00:10:96::a */

const char *lab_node_name(struct lab *l, int node)
{
	return lab_fmt(l, "%s-node%d", l->prefix, node);
}

void lab_pod_ip4(const struct lab_pod *p, char *out, size_t len)
{
	snprintf(out, len, "10.244.%d.%d", p->node, p->host);
}

static void ip6_of(unsigned a, unsigned b, unsigned c, unsigned d, unsigned last, char *out,
		   size_t len)
{
	unsigned char ip[16] = { 0 };

	ip[0] = (uint8_t)(a >> 8), ip[1] = (uint8_t)a;
	ip[2] = (uint8_t)(b >> 8), ip[3] = (uint8_t)b;
	ip[4] = (uint8_t)(c >> 8), ip[5] = (uint8_t)c;
	ip[6] = (uint8_t)(d >> 8), ip[7] = (uint8_t)d;
	ip[14] = (uint8_t)(last >> 8), ip[15] = (uint8_t)last;
	inet_ntop(AF_INET6, ip, out, (socklen_t)len);
}

void lab_pod_ip6(const struct lab_pod *p, char *out, size_t len)
{
	ip6_of(0xfd00, 0x10, 0x244, (unsigned)p->node, (unsigned)p->host, out, len);
}

void lab_node_ip4(int node, char *out, size_t len)
{
	snprintf(out, len, "10.250.0.%d", node);
}

void lab_node_ip6(int node, char *out, size_t len)
{
	ip6_of(0xfd00, 0x10, 0x250, 0, (unsigned)node, out, len);
}

struct lab_svc *lab_find_svc(struct lab *l, const char *ns, const char *name)
{
	for (size_t i = 0; i < l->n_svcs; i++)
		if (!strcmp(l->svcs[i].ns, ns) && !strcmp(l->svcs[i].name, name))
			return &l->svcs[i];
	return NULL;
}

/* Normalize an address of one family into dst ("" and -1 when it is not one). */
static int set_ip(char *dst, size_t len, const char *src, int af)
{
	unsigned char a[16];

	dst[0] = '\0';
	if (inet_pton(af, src, a) != 1 || !inet_ntop(af, a, dst, (socklen_t)len))
		return -1;
	return 0;
}

/* ---- the alloc file ---- */

int lab_alloc_load(struct lab *l, char *err)
{
	const char *path = lab_fmt(l, "%s/alloc", l->state);
	char *buf = lab_read_file(path, NULL), *save = NULL, *line;
	int lineno = 0, rc = -1;

	for (int i = 0; i <= LAB_MAX_NODES; i++)
		l->next_host[i] = LAB_HOST_MIN;
	if (!buf) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, LAB_ERRLEN, "read %s: %s", path, strerror(errno));
		return -1;
	}
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char a[7][256];
		int node, host;

		lineno++;
		if (line[0] == '#')
			continue;
		if (sscanf(line, "cursor %u", &l->cursor) == 1)
			continue;
		if (sscanf(line, "node %d %d", &node, &host) == 2 && node >= 1 &&
		    node <= LAB_MAX_NODES && host >= LAB_HOST_MIN && host <= LAB_HOST_MAX) {
			l->next_host[node] = host;
			continue;
		}
		if (sscanf(line, "svc %255s %255s %255s %255s", a[0], a[1], a[2], a[3]) == 4) {
			struct lab_svc *s;

			l->svcs = lab_grow(l->svcs, &l->cap_svcs, l->n_svcs, sizeof(*l->svcs));
			s = &l->svcs[l->n_svcs++];
			memset(s, 0, sizeof(*s));
			s->ns = lab_str(l, a[0]);
			s->name = lab_str(l, a[1]);
			if ((strcmp(a[2], "-") && set_ip(s->ip4, sizeof(s->ip4), a[2], AF_INET)) ||
			    (strcmp(a[3], "-") && set_ip(s->ip6, sizeof(s->ip6), a[3], AF_INET6))) {
				snprintf(err, LAB_ERRLEN, "%s:%d: bad address", path, lineno);
				goto cleanup;
			}
			continue;
		}
		if (sscanf(line, "pod %255s %255s %255s %255s %255s %d %d", a[0], a[1], a[2], a[3], a[4],
			   &node, &host) == 7 && node >= 1 && node <= l->nodes && host >= LAB_HOST_MIN &&
		    host <= LAB_HOST_MAX) {
			struct lab_pod *p;

			l->pods = lab_grow(l->pods, &l->cap_pods, l->n_pods, sizeof(*l->pods));
			p = &l->pods[l->n_pods++];
			memset(p, 0, sizeof(*p));
			p->ns = lab_str(l, a[0]);
			p->owner = lab_str(l, a[1]);
			p->hash = lab_str(l, a[2]);
			p->name = lab_str(l, a[3]);
			p->uid = lab_str(l, a[4]);
			p->node = node;
			p->host = host;
			continue;
		}
		snprintf(err, LAB_ERRLEN, "%s:%d: damaged allocation line", path, lineno);
		goto cleanup;
	}
	rc = 0;
cleanup:
	free(buf);
	return rc;
}

int lab_alloc_save(struct lab *l, char *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	int rc;

	if (!fp)
		lab_die_oom();
	fprintf(fp, "# bm-lab-render allocations (do not edit)\ncursor %u\n", l->cursor);
	for (int i = 1; i <= l->nodes; i++)
		fprintf(fp, "node %d %d\n", i, l->next_host[i]);
	for (size_t i = 0; i < l->n_svcs; i++)
		fprintf(fp, "svc %s %s %s %s\n", l->svcs[i].ns, l->svcs[i].name,
			*l->svcs[i].ip4 ? l->svcs[i].ip4 : "-", *l->svcs[i].ip6 ? l->svcs[i].ip6 : "-");
	for (size_t i = 0; i < l->n_pods; i++) {
		const struct lab_pod *p = &l->pods[i];

		fprintf(fp, "pod %s %s %s %s %s %d %d\n", p->ns, p->owner, p->hash, p->name, p->uid,
			p->node, p->host);
	}
	if (fclose(fp))
		lab_die_oom();
	rc = lab_write_atomic(l->state, "alloc", buf, len, err);
	free(buf);
	return rc;
}

/* ---- Services ---- */

static int ip_taken(struct lab *l, const struct lab_svc *self, const char *ip)
{
	for (size_t i = 0; i < l->n_svcs; i++)
		if (&l->svcs[i] != self && (!strcmp(l->svcs[i].ip4, ip) || !strcmp(l->svcs[i].ip6, ip)))
			return 1;
	return 0;
}

static int alloc_ip(struct lab *l, struct lab_svc *s, int v6)
{
	char ip[INET6_ADDRSTRLEN];

	for (unsigned i = v6 ? SVC6_FIRST : SVC4_FIRST; i < (v6 ? 0x10000u : 0xffffu); i++) {
		if (v6)
			ip6_of(0xfd00, 0x10, 0x96, 0, i, ip, sizeof(ip));
		else
			snprintf(ip, sizeof(ip), "10.96.%u.%u", i >> 8, i & 0xff);
		if ((!v6 && (i & 0xff) == 0) || ip_taken(l, NULL, ip))
			continue;
		if (v6)
			return set_ip(s->ip6, sizeof(s->ip6), ip, AF_INET6);
		return set_ip(s->ip4, sizeof(s->ip4), ip, AF_INET);
	}
	return -1;
}

/* The IPs written in the manifest, normalized, by family. */
static void given_ips(const struct lab_obj *o, char *ip4, char *ip6)
{
	const struct bm_ynode *spec = bm_y_get(o->root, "spec");
	const struct bm_ynode *ips = bm_y_get(spec, "clusterIPs");
	const char *cand[3] = { bm_y_str(bm_y_get(spec, "clusterIP")) };
	size_t n = 1;
	unsigned char a[16];

	ip4[0] = ip6[0] = '\0';
	for (size_t i = 0; ips && ips->type == BM_Y_SEQ && i < ips->n && n < 3; i++)
		cand[n++] = bm_y_str(ips->kids[i]);
	for (size_t i = 0; i < n; i++) {
		if (!cand[i])
			continue;
		if (inet_pton(AF_INET, cand[i], a) == 1)
			inet_ntop(AF_INET, a, ip4, INET_ADDRSTRLEN);
		else if (inet_pton(AF_INET6, cand[i], a) == 1)
			inet_ntop(AF_INET6, a, ip6, INET6_ADDRSTRLEN);
	}
}

static int svc_wants_ip(const struct lab_obj *o)
{
	const struct bm_ynode *spec = bm_y_get(o->root, "spec");
	const char *type = bm_y_str(bm_y_get(spec, "type"));
	const char *ip = bm_y_str(bm_y_get(spec, "clusterIP"));

	return !(type && !strcmp(type, "ExternalName")) && !(ip && !strcmp(ip, "None"));
}

static int reconcile_services(struct lab *l, char *err)
{
	for (size_t i = 0; i < l->n_svcs; i++)
		l->svcs[i].keep = 0;
	/* Pass 1: given and already allocated IPs; pass 2: new ones, so that a new allocation
	 * never takes an IP that a manifest names. */
	for (int pass = 1; pass <= 2; pass++) {
		for (size_t i = 0; i < l->n_objs; i++) {
			const struct lab_obj *o = &l->objs[i];
			char g4[INET_ADDRSTRLEN], g6[INET6_ADDRSTRLEN];
			int want4, want6, v6_first;
			struct lab_svc *s;

			if (!lab_is(o, "", "Service") || !svc_wants_ip(o))
				continue;
			lab_svc_families(o, &want4, &want6, &v6_first);
			given_ips(o, g4, g6);
			s = lab_find_svc(l, o->ns, o->name);
			if (!s) {
				l->svcs = lab_grow(l->svcs, &l->cap_svcs, l->n_svcs, sizeof(*l->svcs));
				s = &l->svcs[l->n_svcs++];
				memset(s, 0, sizeof(*s));
				s->ns = o->ns;
				s->name = o->name;
			}
			s->keep = 1;
			if (pass == 1) {
				if (!want4)
					s->ip4[0] = '\0';
				if (!want6)
					s->ip6[0] = '\0';
				if (want4 && *g4)
					set_ip(s->ip4, sizeof(s->ip4), g4, AF_INET);
				if (want6 && *g6)
					set_ip(s->ip6, sizeof(s->ip6), g6, AF_INET6);
				if ((*s->ip4 && ip_taken(l, s, s->ip4)) || (*s->ip6 && ip_taken(l, s, s->ip6)))
					return lab_err(err, o, NULL, "cluster IP %s is already allocated to another Service",
						       *s->ip4 && ip_taken(l, s, s->ip4) ? s->ip4 : s->ip6);
				continue;
			}
			if (want4 && !*s->ip4 && alloc_ip(l, s, 0))
				return lab_err(err, o, NULL, "no free IPv4 in 10.96.0.0/16");
			if (want6 && !*s->ip6 && alloc_ip(l, s, 1))
				return lab_err(err, o, NULL, "no free IPv6 in fd00:10:96::/112");
		}
	}
	size_t k = 0;

	for (size_t i = 0; i < l->n_svcs; i++)
		if (l->svcs[i].keep)
			l->svcs[k++] = l->svcs[i];
	l->n_svcs = k;
	return 0;
}

/* ---- Pods ---- */

/* pod-template-hash: FNV-1a over the template as emitted, 10 hex digits. */
static const char *template_hash(struct lab *l, const struct lab_obj *o)
{
	struct bm_ydoc doc = { .root = (struct bm_ynode *)lab_path(o->root, "spec.template") };
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	uint64_t h = 0xcbf29ce484222325ull;

	if (!fp)
		lab_die_oom();
	bm_yaml_emit(fp, &doc);
	if (fclose(fp))
		lab_die_oom();
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)buf[i]) * 0x100000001b3ull;
	free(buf);
	return lab_fmt(l, "%010llx", (unsigned long long)(h & 0xffffffffffull));
}

static int name_taken(struct lab *l, const char *name)
{
	for (size_t i = 0; i < l->n_pods; i++)
		if (!strcmp(l->pods[i].name, name))
			return 1;
	for (size_t i = 0; i < l->n_objs; i++)
		if (lab_is(&l->objs[i], "", "Pod") && !strcmp(l->objs[i].name, name))
			return 1;
	return 0;
}

static int host_taken(struct lab *l, int node, int host)
{
	for (size_t i = 0; i < l->n_pods; i++)
		if (l->pods[i].node == node && l->pods[i].host == host)
			return 1;
	return 0;
}

/* Next free host number on a node, going round from where the last search stopped, so that a
 * removed pod's IP is not handed out again at once. */
static int pick_host(struct lab *l, int node)
{
	int span = LAB_HOST_MAX - LAB_HOST_MIN + 1;

	for (int i = 0; i < span; i++) {
		int h = LAB_HOST_MIN + (l->next_host[node] - LAB_HOST_MIN + i) % span;

		if (!host_taken(l, node, h)) {
			l->next_host[node] = h + 1 > LAB_HOST_MAX ? LAB_HOST_MIN : h + 1;
			return h;
		}
	}
	return 0;
}

static int new_pod(struct lab *l, const struct lab_obj *o, const char *owner, const char *hash,
		   char *err)
{
	static const char safe[] = "bcdfghjklmnpqrstvwxz2456789"; /* Kubernetes' name alphabet */
	const char *node_name = bm_y_str(bm_y_get(lab_pod_template_spec(o), "nodeName"));
	int node = lab_node_index(l, node_name), host = 0;
	unsigned char r[16];
	const char *name = o->name;
	struct lab_pod *p;

	if (node) {
		host = pick_host(l, node);
	} else {
		for (int tries = 0; tries < l->nodes && !host; tries++) {
			node = (int)(l->cursor++ % (unsigned)l->nodes) + 1;
			host = pick_host(l, node);
		}
	}
	if (!host)
		return lab_err(err, o, NULL, "no free pod IP on the lab's nodes");
	for (int tries = 0; strcmp(owner, "-"); tries++) {
		char sfx[6];

		if (tries == 100 || lab_random(r, 5))
			return lab_err(err, o, NULL, "cannot make a unique pod name");
		for (int i = 0; i < 5; i++)
			sfx[i] = safe[r[i] % (sizeof(safe) - 1)];
		sfx[5] = '\0';
		name = lab_fmt(l, "%s-%s-%s", o->name, hash, sfx);
		if (!name_taken(l, name))
			break;
	}
	if (lab_random(r, sizeof(r)))
		return lab_err(err, o, NULL, "getrandom: %s", strerror(errno));
	r[6] = (uint8_t)((r[6] & 0x0f) | 0x40); /* UUID version 4 */
	r[8] = (uint8_t)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	l->pods = lab_grow(l->pods, &l->cap_pods, l->n_pods, sizeof(*l->pods));
	p = &l->pods[l->n_pods++];
	memset(p, 0, sizeof(*p));
	p->ns = o->ns;
	p->owner = owner;
	p->hash = hash;
	p->name = name;
	p->uid = lab_fmt(l,
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
			 r[12], r[13], r[14], r[15]);
	p->node = node;
	p->host = host;
	p->keep = 1;
	p->src = o;
	return 0;
}

static int reconcile_pods(struct lab *l, char *err)
{
	for (size_t i = 0; i < l->n_pods; i++) {
		l->pods[i].keep = 0;
		l->pods[i].src = NULL;
	}
	for (size_t i = 0; i < l->n_objs; i++) {
		const struct lab_obj *o = &l->objs[i];

		if (lab_is(o, "", "Pod")) {
			size_t j;

			for (j = 0; j < l->n_pods; j++) {
				struct lab_pod *p = &l->pods[j];

				if (!strcmp(p->owner, "-") && !strcmp(p->ns, o->ns) && !strcmp(p->name, o->name))
					break;
			}
			if (j < l->n_pods) {
				l->pods[j].keep = 1;
				l->pods[j].src = o;
				continue;
			}
			for (j = 0; j < l->n_pods; j++)
				if (!strcmp(l->pods[j].name, o->name))
					return lab_err(err, o, NULL,
						       "pod %s exists in namespace %s: the lab needs pod names unique across namespaces",
						       o->name, l->pods[j].ns);
			if (new_pod(l, o, "-", "-", err))
				return -1;
			continue;
		}
		if (!lab_is(o, "apps", "Deployment"))
			continue;
		/* The pods of the current template, oldest first, up to spec.replicas; pods of an
		 * older template are replaced (all at once: the lab has no rolling update). */
		const char *hash = template_hash(l, o);
		long want = lab_replicas(o), have = 0;

		for (size_t j = 0; j < l->n_pods && have < want; j++) {
			struct lab_pod *p = &l->pods[j];

			if (!strcmp(p->owner, o->name) && !strcmp(p->ns, o->ns) && !strcmp(p->hash, hash)) {
				p->keep = 1;
				p->src = o;
				have++;
			}
		}
		for (; have < want; have++)
			if (new_pod(l, o, o->name, hash, err))
				return -1;
	}
	size_t k = 0;

	for (size_t i = 0; i < l->n_pods; i++)
		if (l->pods[i].keep)
			l->pods[k++] = l->pods[i];
	l->n_pods = k;
	return 0;
}

int lab_reconcile(struct lab *l, char *err)
{
	if (reconcile_services(l, err))
		return -1;
	return reconcile_pods(l, err);
}
