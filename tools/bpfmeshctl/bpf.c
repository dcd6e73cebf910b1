/* bpfmeshctl bpf: decoded dumps of a node's pinned maps, with service names from the agent's
 * state file when it is there. Reads only: never writes a map. */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bm_svc.h"
#include "ctl.h"
#include "dp.h"

static const char *const lb_names[] = { "RANDOM", "ROUND_ROBIN", "LEAST_REQUEST", "MAGLEV",
					"PASSTHROUGH" };
static const char *const stat_names[] = { BM_STAT_NAMES };

struct svc_name {
	char vip[64];
	unsigned port, proto;
	char name[320];
};

struct names {
	struct svc_name *v;
	size_t n;
};

static const char *lb_name(uint32_t lb)
{
	return lb < sizeof(lb_names) / sizeof(lb_names[0]) ? lb_names[lb] : "?";
}

static void fmt_addr(const uint8_t *a, char *buf, size_t len)
{
	static const uint8_t v4pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (!memcmp(a, v4pfx, 12))
		inet_ntop(AF_INET, a + 12, buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, a, buf, (socklen_t)len);
}

static void fmt_hostport(const uint8_t *a, uint16_t port_be, char *buf, size_t len)
{
	char ip[64];

	fmt_addr(a, ip, sizeof(ip));
	snprintf(buf, len, strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip, ntohs(port_be));
}

static int pick_node(struct bm_ctl *ctl, char *buf, size_t len)
{
	char dir[PATH_MAX], names[1024] = "";
	struct dirent *de;
	int n = 0;
	DIR *d;

	if (ctl->node)
		return 0;
	snprintf(dir, sizeof(dir), "%s/bpfmesh", ctl->bpffs);
	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "bpfmeshctl: no datapath under %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (!n++)
			snprintf(buf, len, "%s", de->d_name);
		size_t l = strlen(names);

		snprintf(names + l, sizeof(names) - l, "%s%s", l ? ", " : "", de->d_name);
	}
	closedir(d);
	if (n != 1) {
		fprintf(stderr, n ? "bpfmeshctl: several nodes (%s): pick one with --node\n" :
				    "bpfmeshctl: no node under %s\n",
			n ? names : dir);
		return -1;
	}
	ctl->node = buf;
	return 0;
}

static void load_names(const struct bm_ctl *ctl, struct names *nm)
{
	char path[PATH_MAX + 64], line[1024];
	FILE *fp;

	if (ctl->state_dir)
		snprintf(path, sizeof(path), "%s/services", ctl->state_dir);
	else
		snprintf(path, sizeof(path), "/run/bpfmesh/%s/services", ctl->node);
	fp = fopen(path, "r");
	if (!fp)
		return;
	while (fgets(line, sizeof(line), fp)) {
		struct svc_name s;
		struct svc_name *v;

		if (sscanf(line, "svc\t%63s\t%u\t%u\t%319s", s.vip, &s.port, &s.proto, s.name) != 4)
			continue;
		v = realloc(nm->v, (nm->n + 1) * sizeof(*v));
		if (!v)
			break;
		nm->v = v;
		nm->v[nm->n++] = s;
	}
	fclose(fp);
}

static const char *name_of(const struct names *nm, const char *vip, unsigned port, unsigned proto)
{
	for (size_t i = 0; i < nm->n; i++)
		if (nm->v[i].port == port && nm->v[i].proto == proto && !strcmp(nm->v[i].vip, vip))
			return nm->v[i].name;
	return "-";
}

static void print_set_members(const struct bm_dp *dp, uint32_t set_id, const struct bm_set *s,
			      FILE *fp, int json)
{
	for (uint32_t i = 0; i < s->count; i++) {
		struct bm_slot_key k = { .set_id = set_id, .idx = i };
		struct bm_backend be = {};
		__u32 be_id = 0;
		char hp[96];

		if (bpf_map_lookup_elem(dp->map_fd[BM_MAP_SLOT], &k, &be_id) ||
		    bpf_map_lookup_elem(dp->map_fd[BM_MAP_BACKEND], &be_id, &be)) {
			if (json)
				fprintf(fp, "%s{\"missing_slot\":%u}", i ? "," : "", i);
			else
				fprintf(fp, " (slot %u missing)", i);
			continue;
		}
		fmt_hostport(be.addr, be.port, hp, sizeof(hp));
		if (json)
			fprintf(fp, "%s{\"id\":%u,\"addr\":\"%s\"}", i ? "," : "", be_id, hp);
		else
			fprintf(fp, " %s", hp);
	}
}

static void print_route(const struct bm_dp *dp, uint32_t route_id, FILE *fp, int json,
			const char *indent)
{
	struct bm_route r = {};

	if (bpf_map_lookup_elem(dp->map_fd[BM_MAP_ROUTE], &route_id, &r) || !r.n_dest) {
		if (!json)
			fprintf(fp, "%sroute %u: missing\n", indent, route_id);
		return;
	}
	uint32_t prev = 0;

	for (uint32_t d = 0; d < r.n_dest && d < BM_MAX_DESTS; d++) {
		uint32_t w = r.dest[d].cum - prev, set_id = r.dest[d].set_id;
		struct bm_set s = {};

		prev = r.dest[d].cum;
		bpf_map_lookup_elem(dp->map_fd[BM_MAP_SET], &set_id, &s);
		if (json) {
			fprintf(fp, "%s{\"set\":%u,\"weight\":%u,\"percent\":%.1f,\"lb\":\"%s\",\"backends\":[",
				d ? "," : "", set_id, w, r.total ? 100.0 * w / r.total : 0.0, lb_name(s.lb));
			print_set_members(dp, set_id, &s, fp, 1);
			fprintf(fp, "]}");
		} else {
			fprintf(fp, "%s-> %5.1f%% set %u %s (%u):", indent,
				r.total ? 100.0 * w / r.total : 0.0, set_id, lb_name(s.lb), s.count);
			if (s.lb == BM_LB_PASSTHROUGH)
				fprintf(fp, " original destination");
			else if (!s.count)
				fprintf(fp, " no ready endpoint: refused");
			print_set_members(dp, set_id, &s, fp, 0);
			fprintf(fp, "\n");
		}
	}
}

static int cmp_key(const void *a, const void *b)
{
	const struct bm_svc_key *x = a, *y = b;
	int c = memcmp(x->addr, y->addr, 16);

	if (c)
		return c;
	if (x->port != y->port)
		return ntohs(x->port) < ntohs(y->port) ? -1 : 1;
	return (int)x->proto - (int)y->proto;
}

static int dump_services(struct bm_ctl *ctl, struct bm_dp *dp)
{
	struct bm_svc_key *keys = NULL, k, *prev = NULL;
	size_t n = 0;
	struct names nm = {};

	load_names(ctl, &nm);
	while (!bpf_map_get_next_key(dp->map_fd[BM_MAP_SVC], prev, &k)) {
		struct bm_svc_key *v = realloc(keys, (n + 1) * sizeof(*v));

		if (!v)
			break;
		keys = v;
		keys[n++] = k;
		prev = &keys[n - 1];
	}
	qsort(keys, n, sizeof(*keys), cmp_key);
	if (ctl->json)
		printf("[");
	for (size_t i = 0; i < n; i++) {
		struct bm_svc_val v;
		char ip[64];
		const char *proto = keys[i].proto == 17 ? "UDP" : "TCP";
		const char *name;

		if (bpf_map_lookup_elem(dp->map_fd[BM_MAP_SVC], &keys[i], &v))
			continue;
		fmt_addr(keys[i].addr, ip, sizeof(ip));
		name = name_of(&nm, ip, ntohs(keys[i].port), keys[i].proto);
		if (ctl->json) {
			printf("%s{\"vip\":\"%s\",\"port\":%u,\"proto\":\"%s\",\"name\":\"%s\","
			       "\"svc_id\":%u,\"route_id\":%u,\"passthrough\":%s,\"source_routes\":%s,"
			       "\"l7\":%s,\"destinations\":[",
			       i ? "," : "", ip, ntohs(keys[i].port), proto, name, v.svc_id, v.route_id,
			       v.flags & BM_SVC_F_PASSTHROUGH ? "true" : "false",
			       v.flags & BM_SVC_F_SRC_ROUTES ? "true" : "false",
			       v.flags & BM_SVC_F_L7 ? "true" : "false");
			if (v.route_id)
				print_route(dp, v.route_id, stdout, 1, "");
			printf("]}");
			continue;
		}
		char hp[96];

		fmt_hostport(keys[i].addr, keys[i].port, hp, sizeof(hp));
		printf("%s%s/%s  %s  (svc %u, route %u)\n", i ? "\n" : "", hp, proto, name,
		       v.svc_id, v.route_id);
		if (v.flags & BM_SVC_F_L7)
			printf("  http rules: connections go to the agent's HTTP listener, which routes "
			       "each request; while it is down, the route below:\n");
		if (v.flags & BM_SVC_F_PASSTHROUGH)
			printf("  passthrough: connections keep their destination (resolution NONE)\n");
		else if (!v.route_id)
			printf("  no route: connects are refused\n");
		else
			print_route(dp, v.route_id, stdout, 0, "  ");
		if (v.flags & BM_SVC_F_SRC_ROUTES)
			printf("  per-caller routes: see `bpfmeshctl bpf srcroutes`\n");
	}
	if (ctl->json)
		printf("]\n");
	free(keys);
	free(nm.v);
	return 0;
}

static int dump_backends(struct bm_dp *dp)
{
	printf("%-7s %-46s %s\n", "ID", "ADDRESS", "ACTIVE");
	for (__u32 id = 1; id < BM_MAX_BACKENDS; id++) {
		struct bm_backend be;
		__u64 active = 0;
		char hp[96];

		if (bpf_map_lookup_elem(dp->map_fd[BM_MAP_BACKEND], &id, &be) || !be.port)
			continue;
		bpf_map_lookup_elem(dp->map_fd[BM_MAP_ACTIVE], &id, &active);
		fmt_hostport(be.addr, be.port, hp, sizeof(hp));
		printf("%-7u %-46s %llu\n", id, hp, (unsigned long long)active);
	}
	return 0;
}

static int dump_sets(struct bm_dp *dp)
{
	for (__u32 id = 1; id < BM_MAX_SETS; id++) {
		struct bm_set s;

		if (bpf_map_lookup_elem(dp->map_fd[BM_MAP_SET], &id, &s) || (!s.count && !s.lb))
			continue;
		printf("set %u: %s, %u backends", id, lb_name(s.lb), s.count);
		if (s.lb == BM_LB_MAGLEV)
			printf(", maglev ring %u", s.maglev_id);
		printf(":");
		print_set_members(dp, id, &s, stdout, 0);
		printf("\n");
	}
	return 0;
}

static int dump_routes(struct bm_dp *dp)
{
	for (__u32 id = 1; id < BM_MAX_ROUTES; id++) {
		struct bm_route r;

		if (bpf_map_lookup_elem(dp->map_fd[BM_MAP_ROUTE], &id, &r) || !r.n_dest)
			continue;
		printf("route %u (total weight %u):\n", id, r.total);
		print_route(dp, id, stdout, 0, "  ");
	}
	return 0;
}

static int dump_workloads(struct bm_ctl *ctl, struct bm_dp *dp)
{
	__u64 k, *prev = NULL;
	char path[PATH_MAX + 64], line[1024];

	printf("%-12s %-8s %-40s %s\n", "CGROUP", "WL", "ADDRESS", "POD");
	while (!bpf_map_get_next_key(dp->map_fd[BM_MAP_WL], prev, &k)) {
		struct bm_workload w;
		char ip[64], pod[512] = "-";
		FILE *fp;

		prev = &k;
		if (bpf_map_lookup_elem(dp->map_fd[BM_MAP_WL], &k, &w))
			continue;
		fmt_addr(w.addr, ip, sizeof(ip));
		if (ctl->state_dir)
			snprintf(path, sizeof(path), "%s/services", ctl->state_dir);
		else
			snprintf(path, sizeof(path), "/run/bpfmesh/%s/services", ctl->node);
		fp = fopen(path, "r");
		while (fp && fgets(line, sizeof(line), fp)) {
			unsigned long long cg;
			char name[512];

			if (sscanf(line, "wl\t%llu\t%511s", &cg, name) == 2 && cg == k)
				snprintf(pod, sizeof(pod), "%s", name);
		}
		if (fp)
			fclose(fp);
		printf("%-12llu %-8u %-40s %s\n", (unsigned long long)k, w.wl_id, ip, pod);
	}
	return 0;
}

static int dump_srcroutes(struct bm_dp *dp)
{
	struct bm_srcroute_key k, *prev = NULL;

	while (!bpf_map_get_next_key(dp->map_fd[BM_MAP_SRCROUTE], prev, &k)) {
		__u32 route = 0;

		prev = &k;
		if (bpf_map_lookup_elem(dp->map_fd[BM_MAP_SRCROUTE], &k, &route))
			continue;
		printf("svc %u, workload %u -> route %u\n", k.svc_id, k.wl_id, route);
		print_route(dp, route, stdout, 0, "  ");
	}
	return 0;
}

static int dump_ct(struct bm_dp *dp)
{
	struct bm_ct_key k, *prev = NULL;
	size_t n = 0;

	printf("%-6s %-46s %-46s %s\n", "PROTO", "SOURCE", "DESTINATION", "REWRITTEN TO");
	while (!bpf_map_get_next_key(dp->map_fd[BM_MAP_CT], prev, &k)) {
		struct bm_ct_val v;
		char a[96], b[96], c[96];

		prev = &k;
		if (bpf_map_lookup_elem(dp->map_fd[BM_MAP_CT], &k, &v))
			continue;
		fmt_hostport(k.src, k.sport, a, sizeof(a));
		fmt_hostport(k.dst, k.dport, b, sizeof(b));
		fmt_hostport(v.addr, v.port, c, sizeof(c));
		printf("%-6s %-46s %-46s %s %s\n", k.proto == 17 ? "UDP" : "TCP", a, b,
		       v.reverse ? "src" : "dst", c);
		n++;
	}
	printf("%zu entries (two per flow)\n", n);
	return 0;
}

static int dump_bypass(struct bm_dp *dp)
{
	struct bm_sockkey k, *prev = NULL;
	static const char *const st[] = { "undecided", "redirect", "tcp", "await" };

	printf("%-46s %-46s %s\n", "LOCAL", "REMOTE", "STATE");
	while (!bpf_map_get_next_key(dp->map_fd[BM_MAP_BYP], prev, &k)) {
		__u32 v = 0;
		char a[96], b[96];
		__be16 lp = htons((uint16_t)k.local_port), rp = htons((uint16_t)k.remote_port);

		prev = &k;
		if (bpf_map_lookup_elem(dp->map_fd[BM_MAP_BYP], &k, &v))
			continue;
		fmt_hostport(k.local, lp, a, sizeof(a));
		fmt_hostport(k.remote, rp, b, sizeof(b));
		printf("%-46s %-46s %s\n", a, b, v < 4 ? st[v] : "?");
	}
	return 0;
}

static int dump_stats(struct bm_dp *dp)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals;

	if (ncpu <= 0)
		return 1;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return 1;
	for (__u32 i = 0; i < BM_STAT__MAX; i++) {
		unsigned long long sum = 0;

		if (bpf_map_lookup_elem(dp->map_fd[BM_MAP_STATS], &i, vals))
			continue;
		for (int c = 0; c < ncpu; c++)
			sum += vals[c];
		printf("%-18s %llu\n", stat_names[i], sum);
	}
	free(vals);
	return 0;
}

static int dump_meta(struct bm_dp *dp)
{
	struct bm_version v = {};
	__u32 zero = 0;

	if (bpf_map_lookup_elem(dp->map_fd[BM_MAP_META], &zero, &v))
		return 1;
	printf("pins: %s\nabi: %u (this build: %u)\nconfig generation: %llu\n", dp->pin_dir, v.abi,
	       BM_ABI_VERSION, (unsigned long long)v.config_gen);
	return 0;
}

int bm_ctl_bpf(struct bm_ctl *ctl, int argc, char **argv)
{
	static char node[256];
	struct bm_dp dp;
	int rc;

	if (argc < 1) {
		fprintf(stderr, "bpfmeshctl bpf: which table? services, backends, sets, routes, "
				"workloads, srcroutes, ct, bypass, stats, meta\n");
		return 2;
	}
	if (pick_node(ctl, node, sizeof(node)))
		return 1;
	if (bm_dp_open_maps(&dp, ctl->bpffs, ctl->node)) {
		fprintf(stderr, "bpfmeshctl: node %s has no datapath pinned under %s/bpfmesh\n",
			ctl->node, ctl->bpffs);
		return 1;
	}
	if (!strcmp(argv[0], "services"))
		rc = dump_services(ctl, &dp);
	else if (!strcmp(argv[0], "backends"))
		rc = dump_backends(&dp);
	else if (!strcmp(argv[0], "sets"))
		rc = dump_sets(&dp);
	else if (!strcmp(argv[0], "routes"))
		rc = dump_routes(&dp);
	else if (!strcmp(argv[0], "workloads"))
		rc = dump_workloads(ctl, &dp);
	else if (!strcmp(argv[0], "srcroutes"))
		rc = dump_srcroutes(&dp);
	else if (!strcmp(argv[0], "stats"))
		rc = dump_stats(&dp);
	else if (!strcmp(argv[0], "ct"))
		rc = dump_ct(&dp);
	else if (!strcmp(argv[0], "bypass"))
		rc = dump_bypass(&dp);
	else if (!strcmp(argv[0], "meta"))
		rc = dump_meta(&dp);
	else {
		fprintf(stderr, "bpfmeshctl bpf: unknown table %s\n", argv[0]);
		rc = 2;
	}
	bm_dp_close(&dp);
	return rc;
}
