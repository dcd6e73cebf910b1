/* bm-lab-render output: every object as the apiserver would store it (Services with their
 * cluster IPs, Pods made from Deployments), one file each in the agents' config dir, and the
 * plan lines the lab CLI reads. */
#include "lab_render.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct out_file {
	const char *name;
	const struct lab_obj *o;
	char *data;
	size_t len;
};

static const char *file_name(struct lab *l, const char *kind, const char *ns, const char *name)
{
	return *ns ? lab_fmt(l, "%s-%s-%s.yaml", kind, ns, name) : lab_fmt(l, "%s-%s.yaml", kind, name);
}

/* The pod's labels: the template's, plus pod-template-hash for pods of a Deployment. */
static struct bm_ynode *pod_labels(struct lab *l, const struct lab_pod *p)
{
	const struct bm_ynode *t = bm_y_get(lab_pod_template_meta(p->src), "labels");
	struct bm_ynode *m = lab_copy(l, t && t->type == BM_Y_MAP ? t : NULL);

	if (strcmp(p->owner, "-"))
		lab_set_str(l, m, "pod-template-hash", p->hash, 1);
	return m;
}

static struct bm_ynode *ip_list(struct lab *l, const char *a, const char *b)
{
	struct bm_ynode *seq = lab_seq(l);
	const char *ips[2] = { a, b };

	for (int i = 0; i < 2; i++) {
		struct bm_ynode *m = lab_map(l);

		lab_set_str(l, m, "ip", ips[i], 0);
		lab_push(l, seq, m);
	}
	return seq;
}

static struct bm_ynode *pod_doc(struct lab *l, const struct lab_pod *p)
{
	const struct lab_obj *o = p->src;
	int bare = !strcmp(p->owner, "-");
	const struct bm_ynode *tmeta = lab_pod_template_meta(o);
	struct bm_ynode *root = bare ? lab_copy(l, o->root) : lab_map(l);
	struct bm_ynode *meta = bare ? lab_copy(l, tmeta) : lab_map(l);
	struct bm_ynode *spec = lab_copy(l, lab_pod_template_spec(o));
	struct bm_ynode *status = lab_map(l), *conds = lab_seq(l);
	const char *sa = bm_y_str(bm_y_get(spec, "serviceAccountName"));
	char ip4[INET_ADDRSTRLEN], ip6[INET6_ADDRSTRLEN], h4[INET_ADDRSTRLEN], h6[INET6_ADDRSTRLEN];
	static const char *const ready[] = { "PodScheduled", "Initialized", "ContainersReady", "Ready" };

	lab_set_str(l, root, "apiVersion", "v1", 0);
	lab_set_str(l, root, "kind", "Pod", 0);
	lab_set_str(l, meta, "name", p->name, 0);
	lab_set_str(l, meta, "namespace", p->ns, 0);
	lab_set_str(l, meta, "uid", p->uid, 1);
	lab_set(l, meta, "labels", pod_labels(l, p));
	if (!bare && bm_y_get(tmeta, "annotations"))
		lab_set(l, meta, "annotations", (struct bm_ynode *)bm_y_get(tmeta, "annotations"));
	lab_set(l, root, "metadata", meta);
	lab_set_str(l, spec, "nodeName", lab_node_name(l, p->node), 0);
	lab_set_str(l, spec, "serviceAccountName", sa && *sa ? sa : "default", 0);
	lab_set(l, root, "spec", spec);
	lab_pod_ip4(p, ip4, sizeof(ip4));
	lab_pod_ip6(p, ip6, sizeof(ip6));
	lab_node_ip4(p->node, h4, sizeof(h4));
	lab_node_ip6(p->node, h6, sizeof(h6));
	lab_set_str(l, status, "phase", "Running", 0);
	for (size_t i = 0; i < sizeof(ready) / sizeof(ready[0]); i++) {
		struct bm_ynode *c = lab_map(l);

		lab_set_str(l, c, "type", ready[i], 0);
		lab_set_str(l, c, "status", "True", 1);
		lab_push(l, conds, c);
	}
	lab_set(l, status, "conditions", conds);
	lab_set_str(l, status, "hostIP", h4, 0);
	lab_set(l, status, "hostIPs", ip_list(l, h4, h6));
	lab_set_str(l, status, "podIP", ip4, 0);
	lab_set(l, status, "podIPs", ip_list(l, ip4, ip6));
	lab_set(l, root, "status", status);
	return root;
}

static struct bm_ynode *svc_doc(struct lab *l, const struct lab_obj *o)
{
	struct bm_ynode *root = lab_copy(l, o->root);
	struct bm_ynode *meta = lab_copy(l, bm_y_get(o->root, "metadata"));
	const struct bm_ynode *ospec = bm_y_get(o->root, "spec");
	struct bm_ynode *spec = lab_copy(l, ospec && ospec->type == BM_Y_MAP ? ospec : NULL);
	const struct bm_ynode *ports = bm_y_get(ospec, "ports");
	const char *type = bm_y_str(bm_y_get(spec, "type"));
	const struct lab_svc *s = lab_find_svc(l, o->ns, o->name);

	lab_set_str(l, meta, "namespace", o->ns, 0);
	lab_set(l, root, "metadata", meta);
	if (!type)
		lab_set_str(l, spec, "type", type = "ClusterIP", 0);
	if (ports && ports->type == BM_Y_SEQ) {
		struct bm_ynode *np = lab_seq(l);

		for (size_t i = 0; i < ports->n; i++) {
			struct bm_ynode *p = lab_copy(l, ports->kids[i]);

			if (!bm_y_get(p, "protocol"))
				lab_set_str(l, p, "protocol", "TCP", 0);
			if (!bm_y_get(p, "targetPort") && bm_y_get(p, "port"))
				lab_set(l, p, "targetPort", (struct bm_ynode *)bm_y_get(p, "port"));
			lab_push(l, np, p);
		}
		lab_set(l, spec, "ports", np);
	}
	if (strcmp(type, "ExternalName")) {
		if (!s) { /* headless */
			struct bm_ynode *none = lab_seq(l);

			lab_push(l, none, lab_scalar(l, "None", 0));
			lab_set_str(l, spec, "clusterIP", "None", 0);
			lab_set(l, spec, "clusterIPs", none);
		} else {
			int want4, want6, v6_first;
			struct bm_ynode *ips = lab_seq(l), *fams = lab_seq(l);
			const char *pol = bm_y_str(bm_y_get(spec, "ipFamilyPolicy"));

			lab_svc_families(o, &want4, &want6, &v6_first);
			for (int k = 0; k < 2; k++) {
				int v6 = k == 0 ? v6_first : !v6_first;
				const char *ip = v6 ? s->ip6 : s->ip4;

				if (!*ip)
					continue;
				lab_push(l, ips, lab_scalar(l, ip, 0));
				lab_push(l, fams, lab_scalar(l, v6 ? "IPv6" : "IPv4", 0));
			}
			if (ips->n)
				lab_set(l, spec, "clusterIP", ips->kids[0]);
			lab_set(l, spec, "clusterIPs", ips);
			lab_set(l, spec, "ipFamilies", fams);
			if (!pol)
				lab_set_str(l, spec, "ipFamilyPolicy", "SingleStack", 0);
		}
	}
	lab_set(l, root, "spec", spec);
	return root;
}

static int add_out(struct out_file **v, size_t *n, size_t *cap,
		   const struct lab_obj *o, const char *name, struct bm_ynode *root, char *err)
{
	struct bm_ydoc doc = { .root = root };
	struct out_file *f;
	FILE *fp;

	*v = lab_grow(*v, cap, *n, sizeof(**v));
	f = &(*v)[(*n)++];
	memset(f, 0, sizeof(*f));
	f->name = name;
	f->o = o;
	fp = open_memstream(&f->data, &f->len);
	if (!fp)
		lab_die_oom();
	fprintf(fp, "%s%s:%d\n", LAB_RENDERED, o->path, o->line);
	if (bm_yaml_emit(fp, &doc)) {
		fclose(fp);
		return lab_err(err, o, NULL, "cannot emit the rendered object");
	}
	if (fclose(fp))
		lab_die_oom();
	return 0;
}

static int by_file(const void *a, const void *b)
{
	return strcmp(((const struct out_file *)a)->name, ((const struct out_file *)b)->name);
}

static int is_ours(const char *path)
{
	char line[sizeof(LAB_RENDERED)];
	FILE *fp = fopen(path, "r");
	int ours;

	if (!fp)
		return 0;
	ours = fgets(line, sizeof(line), fp) && !strcmp(line, LAB_RENDERED);
	fclose(fp);
	return ours;
}

static int write_config(struct lab *l, const char *dir, struct out_file *v, size_t n, char *err)
{
	DIR *d;
	struct dirent *de;

	for (size_t i = 0; i < n; i++) {
		const char *path = lab_fmt(l, "%s/%s", dir, v[i].name);
		size_t len = 0;
		char *old = lab_read_file(path, &len);
		int same = old && len == v[i].len && !memcmp(old, v[i].data, len);

		free(old);
		if (!same && lab_write_atomic(dir, v[i].name, v[i].data, v[i].len, err))
			return -1;
	}
	/* Remove what the lab rendered before and no longer wants; files written by hand stay. */
	d = opendir(dir);
	if (!d) {
		snprintf(err, LAB_ERRLEN, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		struct out_file key = { .name = de->d_name };
		const char *path = lab_fmt(l, "%s/%s", dir, de->d_name);

		if (de->d_name[0] == '.' || (n && bsearch(&key, v, n, sizeof(*v), by_file)) ||
		    !is_ours(path))
			continue;
		if (unlink(path) && errno != ENOENT) {
			snprintf(err, LAB_ERRLEN, "remove %s: %s", path, strerror(errno));
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

/* Render every object; with write, update the config dir. Two objects that would land in the
 * same file are an error either way. */
int lab_render(struct lab *l, int write, char *err)
{
	struct out_file *v = NULL;
	size_t n = 0, cap = 0;
	int rc = -1;

	for (size_t i = 0; i < l->n_objs; i++) {
		const struct lab_obj *o = &l->objs[i];
		struct bm_ynode *root = o->root;

		if (lab_is(o, "apps", "Deployment") || lab_is(o, "", "Pod"))
			continue; /* their Pods are written below */
		if (lab_is(o, "", "Service"))
			root = svc_doc(l, o);
		if (add_out(&v, &n, &cap, o, file_name(l, o->kind, o->ns, o->name), root, err))
			goto cleanup;
	}
	for (size_t i = 0; i < l->n_pods; i++)
		if (add_out(&v, &n, &cap, l->pods[i].src, file_name(l, "Pod", l->pods[i].ns, l->pods[i].name),
			    pod_doc(l, &l->pods[i]), err))
			goto cleanup;
	if (n)
		qsort(v, n, sizeof(*v), by_file);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(v[i].name, v[i - 1].name)) {
			const struct lab_obj *a = v[i - 1].o, *b = v[i].o;

			snprintf(err, LAB_ERRLEN,
				 "%s:%d: %s %s/%s and %s:%d: %s %s/%s would both be written to %s",
				 a->path, a->line, a->kind, a->ns, a->name, b->path, b->line, b->kind, b->ns,
				 b->name, v[i].name);
			goto cleanup;
		}
	if (write) {
		const char *dir = lab_fmt(l, "%s/config", l->state);

		if (mkdir(dir, 0755) && errno != EEXIST) {
			snprintf(err, LAB_ERRLEN, "mkdir %s: %s", dir, strerror(errno));
			goto cleanup;
		}
		if (write_config(l, dir, v, n, err))
			goto cleanup;
	}
	rc = 0;
cleanup:
	for (size_t i = 0; i < n; i++)
		free(v[i].data);
	free(v);
	return rc;
}

/* <config>/.generation, written last: the agents report it back as source_generation. */
int lab_bump_generation(struct lab *l, unsigned long *gen, char *err)
{
	const char *dir = lab_fmt(l, "%s/config", l->state);
	char *old = lab_read_file(lab_fmt(l, "%s/.generation", dir), NULL);
	char buf[32];

	*gen = old ? strtoul(old, NULL, 10) + 1 : 1;
	free(old);
	snprintf(buf, sizeof(buf), "%lu\n", *gen);
	return lab_write_atomic(dir, ".generation", buf, strlen(buf), err);
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* svc <name> <ns> <ip4|-> <ip6|-> <port/PROTO,...|->
 * pod <name> <ns> <uid> <node> <ip4> <ip6> <sa> <k=v,...|-> <tcp,...|-> <udp,...|-> <owner|-> */
void lab_print_plan(struct lab *l, FILE *fp)
{
	for (size_t i = 0; i < l->n_objs; i++) {
		const struct lab_obj *o = &l->objs[i];
		const struct lab_svc *s;
		const struct bm_ynode *ports = lab_path(o->root, "spec.ports");
		int any = 0;

		if (!lab_is(o, "", "Service"))
			continue;
		s = lab_find_svc(l, o->ns, o->name);
		fprintf(fp, "svc %s %s %s %s ", o->name, o->ns, s && *s->ip4 ? s->ip4 : "-",
			s && *s->ip6 ? s->ip6 : "-");
		for (size_t k = 0; ports && ports->type == BM_Y_SEQ && k < ports->n; k++) {
			const char *proto = bm_y_str(bm_y_get(ports->kids[k], "protocol"));

			fprintf(fp, "%s%s/%s", any++ ? "," : "",
				bm_y_str(bm_y_get(ports->kids[k], "port")), proto ? proto : "TCP");
		}
		fprintf(fp, "%s\n", any ? "" : "-");
	}
	for (size_t i = 0; i < l->n_pods; i++) {
		const struct lab_pod *p = &l->pods[i];
		const struct bm_ynode *labels = pod_labels(l, p);
		const char *sa = bm_y_str(bm_y_get(lab_pod_template_spec(p->src), "serviceAccountName"));
		const char **kv = calloc(labels->n / 2 + 1, sizeof(*kv));
		char ip4[INET_ADDRSTRLEN], ip6[INET6_ADDRSTRLEN], tcp[2048], udp[2048];

		if (!kv)
			lab_die_oom();
		for (size_t k = 0; k + 1 < labels->n; k += 2)
			kv[k / 2] = lab_fmt(l, "%s=%s", labels->kids[k]->str, labels->kids[k + 1]->str);
		qsort(kv, labels->n / 2, sizeof(*kv), by_str);
		lab_pod_ip4(p, ip4, sizeof(ip4));
		lab_pod_ip6(p, ip6, sizeof(ip6));
		lab_pod_ports(l, p, "TCP", tcp, sizeof(tcp));
		lab_pod_ports(l, p, "UDP", udp, sizeof(udp));
		fprintf(fp, "pod %s %s %s %s %s %s %s ", p->name, p->ns, p->uid, lab_node_name(l, p->node),
			ip4, ip6, sa && *sa ? sa : "default");
		for (size_t k = 0; k < labels->n / 2; k++)
			fprintf(fp, "%s%s", k ? "," : "", kv[k]);
		fprintf(fp, "%s %s %s %s\n", labels->n ? "" : "-", tcp, udp, p->owner);
		free(kv);
	}
}
