/* The TC fallback programs run with BPF_PROG_TEST_RUN on packet fixtures: a SYN to a VIP comes
 * out addressed to a backend with valid checksums, the reply comes back from the VIP, later
 * packets keep their backend, UDP and IPv6 too, and what is not a service passes untouched. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cmocka.h>

#include "catalog.h"
#include "config.h"
#include "dp.h"
#include "install.h"
#include "log.h"
#include "tables.h"
#include "tc_nat.skel.h"

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

static char cg_dir[PATH_MAX + 80], node[64];
static struct bm_dp dp;
static struct bm_installer in;
static struct bm_tc_nat *skel;
static int ready;

static const char *const config =
	"apiVersion: v1\nkind: Service\nmetadata: {name: backend, namespace: default}\n"
	"spec:\n  clusterIPs: [10.96.0.10, 'fd00:10:96::10']\n"
	"  ports: [{name: http, port: 80, targetPort: 8080}, {name: dns, port: 53, protocol: UDP,"
	" targetPort: 5353}]\n---\n"
	"apiVersion: v1\nkind: Endpoints\nmetadata: {name: backend, namespace: default}\n"
	"subsets: [{addresses: [{ip: 10.244.1.10}, {ip: 10.244.1.11}], ports: [{name: http, port: 8080},"
	" {name: dns, port: 5353, protocol: UDP}]}]\n---\n"
	"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: backend-v6, namespace: default,"
	" labels: {kubernetes.io/service-name: backend}}\naddressType: IPv6\n"
	"endpoints: [{addresses: ['fd00:10:244:1::10']}]\nports: [{name: http, port: 8080}]\n---\n"
	"apiVersion: v1\nkind: Service\nmetadata: {name: empty, namespace: default}\n"
	"spec:\n  clusterIP: 10.96.0.20\n  ports: [{port: 9000}]\n  selector: {app: nobody}\n";

/* ---- packets ---- */

static uint16_t csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint32_t csum_add(uint32_t s, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		s += (uint32_t)(b[n - 1] << 8);
	return s;
}

struct pkt {
	uint8_t b[256];
	size_t len;
	int v6;
	size_t l4; /* offset of the L4 header */
};

/* Ethernet + IPv4/IPv6 + TCP (flags) or UDP, with correct checksums. */
static void build(struct pkt *p, int v6, int proto, const char *src, uint16_t sport,
		  const char *dst, uint16_t dport, uint8_t tcp_flags)
{
	uint8_t *ip, *l4;
	size_t l4len = proto == IPPROTO_TCP ? 20 : 8 + 4;

	memset(p, 0, sizeof(*p));
	p->v6 = v6;
	p->b[12] = v6 ? 0x86 : 0x08;
	p->b[13] = v6 ? 0xdd : 0x00;
	ip = p->b + 14;
	if (!v6) {
		ip[0] = 0x45;
		ip[2] = (uint8_t)((20 + l4len) >> 8);
		ip[3] = (uint8_t)(20 + l4len);
		ip[8] = 64;
		ip[9] = (uint8_t)proto;
		inet_pton(AF_INET, src, ip + 12);
		inet_pton(AF_INET, dst, ip + 16);
		uint16_t c = htons(csum_fold(csum_add(0, ip, 20)));

		memcpy(ip + 10, &c, 2);
		p->l4 = 14 + 20;
	} else {
		ip[0] = 0x60;
		ip[4] = (uint8_t)(l4len >> 8);
		ip[5] = (uint8_t)l4len;
		ip[6] = (uint8_t)proto;
		ip[7] = 64;
		inet_pton(AF_INET6, src, ip + 8);
		inet_pton(AF_INET6, dst, ip + 24);
		p->l4 = 14 + 40;
	}
	l4 = p->b + p->l4;
	l4[0] = (uint8_t)(sport >> 8);
	l4[1] = (uint8_t)sport;
	l4[2] = (uint8_t)(dport >> 8);
	l4[3] = (uint8_t)dport;
	if (proto == IPPROTO_TCP) {
		l4[12] = 5 << 4;
		l4[13] = tcp_flags;
	} else {
		l4[4] = 0;
		l4[5] = (uint8_t)l4len;
		memcpy(l4 + 8, "ping", 4);
	}
	p->len = p->l4 + l4len;
	/* L4 checksum over the pseudo header. */
	uint32_t s = 0;
	uint8_t pr[2] = { 0, (uint8_t)proto }, ln[2] = { (uint8_t)(l4len >> 8), (uint8_t)l4len };

	s = v6 ? csum_add(s, ip + 8, 32) : csum_add(s, ip + 12, 8);
	s = csum_add(s, pr, 2);
	s = csum_add(s, ln, 2);
	s = csum_add(s, l4, l4len);
	uint16_t c = htons(csum_fold(s));

	memcpy(l4 + (proto == IPPROTO_TCP ? 16 : 6), &c, 2);
}

/* Both checksums of a packet verify (sum to 0xffff). */
static int csums_ok(const struct pkt *p)
{
	const uint8_t *ip = p->b + 14, *l4 = p->b + p->l4;
	size_t l4len = p->len - p->l4;
	int proto = p->v6 ? ip[6] : ip[9];
	uint8_t pr[2] = { 0, (uint8_t)proto }, ln[2] = { (uint8_t)(l4len >> 8), (uint8_t)l4len };
	uint32_t s = 0;

	if (!p->v6 && csum_fold(csum_add(0, ip, 20)) != 0)
		return 0;
	s = p->v6 ? csum_add(s, ip + 8, 32) : csum_add(s, ip + 12, 8);
	s = csum_add(s, pr, 2);
	s = csum_add(s, ln, 2);
	s = csum_add(s, l4, l4len);
	return csum_fold(s) == 0;
}

static void addr_of(const struct pkt *p, int dst, char *buf, size_t len, uint16_t *port)
{
	const uint8_t *ip = p->b + 14, *l4 = p->b + p->l4;

	if (p->v6)
		inet_ntop(AF_INET6, ip + (dst ? 24 : 8), buf, (socklen_t)len);
	else
		inet_ntop(AF_INET, ip + (dst ? 16 : 12), buf, (socklen_t)len);
	*port = (uint16_t)(l4[dst ? 2 : 0] << 8 | l4[dst ? 3 : 1]);
}

/* Run one program on p in place; returns its verdict. */
static int run(struct bpf_program *prog, struct pkt *p)
{
	struct pkt out;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->b, .data_size_in = (__u32)p->len,
		    .data_out = out.b, .data_size_out = sizeof(out.b), .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(prog), &o), 0);
	assert_int_equal(o.data_size_out, p->len);
	memcpy(p->b, out.b, p->len);
	return (int)o.retval;
}

/* ---- fixture ---- */

static int find_cgroup2(char *out, size_t len)
{
	FILE *fp = fopen("/proc/mounts", "r");
	char dev[256], mnt[PATH_MAX], type[64], rest[512];
	int found = 0;

	if (!fp)
		return -1;
	while (!found && fscanf(fp, "%255s %4095s %63s %511[^\n]\n", dev, mnt, type, rest) == 4)
		if (!strcmp(type, "cgroup2") && strlen(mnt) + 32 < len) {
			snprintf(out, len, "%s/%s", mnt, node);
			found = 1;
		}
	fclose(fp);
	return found ? 0 : -1;
}

static void cleanup(void)
{
	if (ready) {
		bm_tc_nat__destroy(skel);
		bm_install_free(&in);
		bm_dp_close(&dp);
		ready = 0;
	}
	if (node[0])
		bm_dp_cleanup("/sys/fs/bpf", node);
	if (cg_dir[0])
		rmdir(cg_dir);
}

static int setup(void **state)
{
	struct bm_config *c = bm_config_new();
	struct bm_catalog cat;
	struct bm_tables t;
	struct bm_install_stats st;
	struct bm_compile_opts o = { .node = "n1" };
	char msg[256];

	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: needs root (BPF)\n");
		return -1;
	}
	snprintf(node, sizeof(node), "bmtc%d", getpid());
	if (find_cgroup2(cg_dir, sizeof(cg_dir)) || mkdir(cg_dir, 0755))
		return -1;
	if (bm_dp_open(&dp, "/sys/fs/bpf", node, cg_dir) || bm_install_init(&in, &dp))
		return -1;
	bm_config_load_buf(c, "tc.yaml", config, strlen(config));
	if (c->n_errors || bm_catalog_build(&cat, c) || bm_compile(&cat, &o, &t))
		return -1;
	if (bm_install_apply(&in, &t, 1, &st, msg, sizeof(msg)) || bm_dp_commit(&dp))
		return -1;
	bm_tables_free(&t);
	bm_catalog_free(&cat);
	bm_config_free(c);
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = dp.pin_dir);
	skel = bm_tc_nat__open_opts(&opts);
	if (!skel || bm_tc_nat__load(skel))
		return -1;
	ready = 1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cleanup();
	return 0;
}

/* ---- tests ---- */

static void test_tcp_flow_v4(void **state)
{
	struct pkt p, r;
	char a[64], first[64];
	uint16_t port;

	(void)state;
	build(&p, 0, IPPROTO_TCP, "10.244.9.2", 40000, "10.96.0.10", 80, 0x02 /* SYN */);
	assert_int_equal(run(skel->progs.bm_tc_from_pod, &p), TC_ACT_OK);
	addr_of(&p, 1, first, sizeof(first), &port);
	assert_true(!strcmp(first, "10.244.1.10") || !strcmp(first, "10.244.1.11")); /* a backend */
	assert_int_equal(port, 8080);                                             /* targetPort */
	assert_true(csums_ok(&p)); /* IP and TCP checksums still verify */
	addr_of(&p, 0, a, sizeof(a), &port);
	assert_string_equal(a, "10.244.9.2"); /* the source is untouched */

	/* The SYN-ACK from that backend goes back to the client as from the VIP. */
	build(&r, 0, IPPROTO_TCP, first, 8080, "10.244.9.2", 40000, 0x12);
	assert_int_equal(run(skel->progs.bm_tc_to_pod, &r), TC_ACT_OK);
	addr_of(&r, 0, a, sizeof(a), &port);
	assert_string_equal(a, "10.96.0.10");
	assert_int_equal(port, 80);
	assert_true(csums_ok(&r));

	/* Every later packet of the flow keeps its backend. */
	for (int i = 0; i < 20; i++) {
		build(&p, 0, IPPROTO_TCP, "10.244.9.2", 40000, "10.96.0.10", 80, 0x10 /* ACK */);
		assert_int_equal(run(skel->progs.bm_tc_from_pod, &p), TC_ACT_OK);
		addr_of(&p, 1, a, sizeof(a), &port);
		assert_string_equal(a, first);
	}
}

static void test_new_flows_spread(void **state)
{
	int hits10 = 0, hits11 = 0;

	(void)state;
	for (uint16_t sp = 41000; sp < 41200; sp++) {
		struct pkt p;
		char a[64];
		uint16_t port;

		build(&p, 0, IPPROTO_TCP, "10.244.9.3", sp, "10.96.0.10", 80, 0x02);
		assert_int_equal(run(skel->progs.bm_tc_from_pod, &p), TC_ACT_OK);
		addr_of(&p, 1, a, sizeof(a), &port);
		hits10 += !strcmp(a, "10.244.1.10");
		hits11 += !strcmp(a, "10.244.1.11");
	}
	assert_int_equal(hits10 + hits11, 200);
	assert_true(hits10 > 50 && hits11 > 50); /* both backends get flows */
}

static void test_udp_and_ipv6(void **state)
{
	struct pkt p, r;
	char a[64], be[64];
	uint16_t port;

	(void)state;
	build(&p, 0, IPPROTO_UDP, "10.244.9.2", 5000, "10.96.0.10", 53, 0);
	assert_int_equal(run(skel->progs.bm_tc_from_pod, &p), TC_ACT_OK);
	addr_of(&p, 1, be, sizeof(be), &port);
	assert_int_equal(port, 5353);
	assert_true(csums_ok(&p));
	build(&r, 0, IPPROTO_UDP, be, 5353, "10.244.9.2", 5000, 0);
	assert_int_equal(run(skel->progs.bm_tc_to_pod, &r), TC_ACT_OK);
	addr_of(&r, 0, a, sizeof(a), &port);
	assert_string_equal(a, "10.96.0.10");
	assert_int_equal(port, 53);
	assert_true(csums_ok(&r));

	build(&p, 1, IPPROTO_TCP, "fd00:10:244:9::2", 40000, "fd00:10:96::10", 80, 0x02);
	assert_int_equal(run(skel->progs.bm_tc_from_pod, &p), TC_ACT_OK);
	addr_of(&p, 1, a, sizeof(a), &port);
	assert_string_equal(a, "fd00:10:244:1::10");
	assert_int_equal(port, 8080);
	assert_true(csums_ok(&p)); /* the pseudo-header sum covers the 16-byte address */
	build(&r, 1, IPPROTO_TCP, "fd00:10:244:1::10", 8080, "fd00:10:244:9::2", 40000, 0x12);
	assert_int_equal(run(skel->progs.bm_tc_to_pod, &r), TC_ACT_OK);
	addr_of(&r, 0, a, sizeof(a), &port);
	assert_string_equal(a, "fd00:10:96::10");
	assert_true(csums_ok(&r));
}

static void test_untouched_and_refused(void **state)
{
	struct pkt p, orig;

	(void)state;
	/* Not a service address, or a service port it does not have: byte for byte the same. */
	build(&p, 0, IPPROTO_TCP, "10.244.9.2", 40001, "10.244.1.10", 8080, 0x02);
	orig = p;
	assert_int_equal(run(skel->progs.bm_tc_from_pod, &p), TC_ACT_OK);
	assert_memory_equal(p.b, orig.b, p.len);
	build(&p, 0, IPPROTO_TCP, "10.244.9.2", 40002, "10.96.0.10", 81, 0x02);
	orig = p;
	assert_int_equal(run(skel->progs.bm_tc_from_pod, &p), TC_ACT_OK);
	assert_memory_equal(p.b, orig.b, p.len);
	/* A reply that belongs to no translated flow passes as it is. */
	build(&p, 0, IPPROTO_TCP, "10.244.1.10", 8080, "10.244.9.2", 49999, 0x12);
	orig = p;
	assert_int_equal(run(skel->progs.bm_tc_to_pod, &p), TC_ACT_OK);
	assert_memory_equal(p.b, orig.b, p.len);
	/* A service with no endpoint: dropped, as nothing could answer for the VIP. */
	build(&p, 0, IPPROTO_TCP, "10.244.9.2", 40003, "10.96.0.20", 9000, 0x02);
	assert_int_equal(run(skel->progs.bm_tc_from_pod, &p), TC_ACT_SHOT);
	/* Too short to parse: left to the stack. */
	build(&p, 0, IPPROTO_TCP, "10.244.9.2", 40004, "10.96.0.10", 80, 0x02);
	p.len = 14 + 20 + 4; /* the IP header, not the whole TCP one */
	assert_int_equal(run(skel->progs.bm_tc_from_pod, &p), TC_ACT_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_flow_v4),
		cmocka_unit_test(test_new_flows_spread),
		cmocka_unit_test(test_udp_and_ipv6),
		cmocka_unit_test(test_untouched_and_refused),
	};
	pid_t pid;
	int status = 0;

	bm_log_level = BM_LOG_WARN;
	bm_log_libbpf();
	/* The tests run in a child; this parent removes its pins and cgroup however it ended. */
	pid = fork();
	if (pid == 0)
		exit(cmocka_run_group_tests_name("TC fallback on packet fixtures", tests, setup,
						 teardown));
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return 1;
	snprintf(node, sizeof(node), "bmtc%d", pid);
	if (!find_cgroup2(cg_dir, sizeof(cg_dir)))
		cleanup();
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
