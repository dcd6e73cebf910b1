/* The connect/sendmsg/recvmsg/getpeername/sockops programs exercised for real: this process
 * takes its own network namespace, attaches the datapath to a cgroup of its own, moves itself
 * into pod cgroups below it and opens real sockets to service addresses. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <net/if.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cmocka.h>

#include "bm_hash.h"
#include "catalog.h"
#include "config.h"
#include "dp.h"
#include "install.h"
#include "log.h"
#include "maglev.h"
#include "tables.h"
#include "tc.h"
#include "tc_host.h"

#define LB_SEED 0x5eedu /* BM_SRC_HASH_SEED of bpf/lib/lb.h */

static char cg_root[256];     /* cgroup2 mount */
static char cg_node[384]; /* the node cgroup the programs attach to */
static char node[64];
static struct bm_dp dp;
static struct bm_installer in;
static int ready;

/* ---- environment ---- */

static int find_cgroup2(char *out, size_t len)
{
	FILE *fp = fopen("/proc/mounts", "r");
	char dev[256], mnt[PATH_MAX], type[64], rest[512];
	int found = 0;

	if (!fp)
		return -1;
	while (!found && fscanf(fp, "%255s %4095s %63s %511[^\n]\n", dev, mnt, type, rest) == 4)
		if (!strcmp(type, "cgroup2") && strlen(mnt) < len) {
			memcpy(out, mnt, strlen(mnt) + 1);
			found = 1;
		}
	fclose(fp);
	return found ? 0 : -1;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
	close(fd);
	return rc;
}

static void join_cgroup(const char *dir)
{
	char path[PATH_MAX], pid[32];

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(pid, sizeof(pid), "%d", getpid());
	assert_int_equal(write_str(path, pid), 0);
}

static void pod_dir(const char *uid, char *out, size_t len)
{
	snprintf(out, len, "%s/kubepods/pod%s", cg_node, uid);
}

static void be_pod(const char *uid)
{
	char d[PATH_MAX];

	pod_dir(uid, d, sizeof(d));
	join_cgroup(d);
}

static const char *const pod_uids[] = { "client-a", "client-b", "client-c", "client-d",
					"client-e", "client-f" };

static int pod_cgroup(void *arg, const struct bm_pod *pod, uint64_t *cgid)
{
	char d[PATH_MAX];
	struct stat st;

	(void)arg;
	if (!pod->meta.uid)
		return -1;
	pod_dir(pod->meta.uid, d, sizeof(d));
	if (stat(d, &st))
		return -1;
	*cgid = st.st_ino;
	return 0;
}

static char tc_ns[32]; /* the TC test's client namespace */

static void set_names(pid_t pid)
{
	snprintf(tc_ns, sizeof(tc_ns), "bmtcc%d", (int)pid);
	snprintf(node, sizeof(node), "bmhook%d", (int)pid);
	snprintf(cg_node, sizeof(cg_node), "%s/%s", cg_root, node);
}

static void teardown_env(void)
{
	char d[PATH_MAX];

	if (ready) {
		join_cgroup(cg_root); /* out of the pod cgroup so it can be removed */
		bm_install_free(&in);
		bm_dp_close(&dp);
	}
	if (node[0])
		bm_dp_cleanup("/sys/fs/bpf", node);
	if (tc_ns[0]) {
		char path[64];

		snprintf(path, sizeof(path), "/run/netns/%s", tc_ns);
		if (access(path, F_OK) == 0) {
			char cmd[96];

			snprintf(cmd, sizeof(cmd), "ip netns del %s", tc_ns);
			if (system(cmd))
				fprintf(stderr, "could not remove netns %s\n", tc_ns);
		}
	}
	for (size_t i = 0; i < sizeof(pod_uids) / sizeof(pod_uids[0]); i++) {
		pod_dir(pod_uids[i], d, sizeof(d));
		rmdir(d);
	}
	snprintf(d, sizeof(d), "%s/kubepods", cg_node);
	rmdir(d);
	rmdir(cg_node);
	ready = 0;
}

static int setup_env(void **state)
{
	char d[PATH_MAX];

	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: the hook tests need root (BPF, netns, cgroups)\n");
		return -1;
	}
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	/* Our own namespace: these addresses exist only here. */
	if (system("ip link set lo up && "
		   "for i in 10 11 12 13; do ip addr add 10.244.1.$i/32 dev lo; "
		   "ip -6 addr add fd00:10:244:1::$i/128 dev lo nodad; done"))
		return -1;
	if (find_cgroup2(cg_root, sizeof(cg_root)))
		return -1;
	set_names(getpid());
	if (mkdir(cg_node, 0755))
		return -1;
	snprintf(d, sizeof(d), "%s/kubepods", cg_node);
	mkdir(d, 0755);
	for (size_t i = 0; i < sizeof(pod_uids) / sizeof(pod_uids[0]); i++) {
		pod_dir(pod_uids[i], d, sizeof(d));
		if (mkdir(d, 0755))
			return -1;
	}
	atexit(teardown_env);
	if (bm_dp_open(&dp, "/sys/fs/bpf", node, cg_node))
		return -1;
	if (bm_install_init(&in, &dp)) {
		bm_dp_close(&dp);
		return -1;
	}
	if (bm_dp_commit(&dp)) {
		bm_install_free(&in);
		bm_dp_close(&dp);
		return -1;
	}
	ready = 1;
	be_pod("client-a");
	return 0;
}

static int teardown_group(void **state)
{
	(void)state;
	teardown_env();
	return 0;
}

/* ---- config ---- */

static const char *const pods_yaml =
	"apiVersion: v1\nkind: Pod\nmetadata: {name: client-a, namespace: default, uid: client-a,"
	" labels: {app: client}}\nspec: {nodeName: n1}\n"
	"status: {phase: Running, podIP: 10.244.2.1}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: client-b, namespace: default, uid: client-b,"
	" labels: {app: canary-client}}\nspec: {nodeName: n1}\n"
	"status: {phase: Running, podIP: 10.244.2.2}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: client-c, namespace: other, uid: client-c,"
	" labels: {app: client}}\nspec: {nodeName: n1}\n"
	"status: {phase: Running, podIP: 10.244.2.3}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: client-d, namespace: default, uid: client-d,"
	" labels: {app: client}}\nspec: {nodeName: n1}\n"
	"status: {phase: Running, podIP: 10.244.2.4}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: client-e, namespace: default, uid: client-e,"
	" labels: {app: client}}\nspec: {nodeName: n1}\n"
	"status: {phase: Running, podIP: 10.244.2.5}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: client-f, namespace: default, uid: client-f,"
	" labels: {app: client}}\nspec: {nodeName: n1}\n"
	"status: {phase: Running, podIP: 10.244.2.6}\n---\n"
	/* backends: v1 on .10 and .11, v2 on .12 */
	"apiVersion: v1\nkind: Pod\nmetadata: {name: be-v1-a, namespace: default, uid: be1,"
	" labels: {app: backend, version: v1}}\nspec: {nodeName: n2, containers: [{name: c, ports:"
	" [{name: web, containerPort: 8080}]}]}\n"
	"status: {phase: Running, podIPs: [{ip: 10.244.1.10}, {ip: 'fd00:10:244:1::10'}]}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: be-v1-b, namespace: default, uid: be2,"
	" labels: {app: backend, version: v1}}\nspec: {nodeName: n2, containers: [{name: c, ports:"
	" [{name: web, containerPort: 8080}]}]}\n"
	"status: {phase: Running, podIPs: [{ip: 10.244.1.11}, {ip: 'fd00:10:244:1::11'}]}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: be-v2, namespace: default, uid: be3,"
	" labels: {app: backend, version: v2}}\nspec: {nodeName: n2, containers: [{name: c, ports:"
	" [{name: web, containerPort: 8081}]}]}\n"
	"status: {phase: Running, podIPs: [{ip: 10.244.1.12}, {ip: 'fd00:10:244:1::12'}]}\n";

static const char *const backend_svc =
	"apiVersion: v1\nkind: Service\nmetadata: {name: backend, namespace: default}\n"
	"spec:\n  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.10, 'fd00:10:96::10']\n"
	"  ports: [{name: http, port: 80, targetPort: web}, {name: dns, port: 53, protocol: UDP,"
	" targetPort: 5353}]\n  selector: {app: backend}\n";

static const char *const subsets_dr =
	"apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
	"metadata: {name: backend, namespace: default}\nspec:\n  host: backend\n"
	"  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n";

static int host_routes; /* the host-path test: keep bm_svc0's routes in step on every apply */
static int l7_on;       /* the L7 test: the agent's HTTP listener at 10.244.1.13:15001 */

/* Load YAML docs (joined with ---), compile for node n1 and install. Returns config errors. */
static size_t apply(const char *first, ...)
{
	struct bm_config *c = bm_config_new();
	struct bm_catalog cat;
	struct bm_tables t;
	struct bm_install_stats st;
	struct bm_compile_opts o = { .node = "n1", .pod_cgroup = pod_cgroup };
	char msg[256], name[32];

	if (l7_on) {
		o.l7_port = 15001;
		assert_int_equal(bm_ip_parse("10.244.1.13", &o.l7_addr4), 0);
	}
	size_t errors;
	va_list ap;
	int i = 0;

	assert_non_null(c);
	va_start(ap, first);
	for (const char *doc = first; doc; doc = va_arg(ap, const char *)) {
		snprintf(name, sizeof(name), "doc%d.yaml", i++);
		bm_config_load_buf(c, name, doc, strlen(doc));
	}
	va_end(ap);
	if (!c->n_errors)
		assert_int_equal(bm_catalog_build(&cat, c), 0);
	else
		memset(&cat, 0, sizeof(cat));
	memset(&t, 0, sizeof(t));
	if (!c->n_errors)
		assert_int_equal(bm_compile(&cat, &o, &t), 0);
	errors = c->n_errors;
	if (errors)
		bm_config_print_diags(c, stderr);
	else
		assert_int_equal(bm_install_apply(&in, &t, 1, &st, msg, sizeof(msg)), 0);
	if (!errors && host_routes)
		assert_int_equal(bm_host_routes_sync(&t), 0);
	bm_tables_free(&t);
	bm_catalog_free(&cat);
	bm_config_free(c);
	return errors;
}

/* ---- sockets ---- */

/* Every socket a test opens, closed after each test even when an assertion failed. */
static int open_fds[256];
static int n_open_fds;

static int track(int fd)
{
	if (fd >= 0 && n_open_fds < (int)(sizeof(open_fds) / sizeof(open_fds[0])))
		open_fds[n_open_fds++] = fd;
	return fd;
}

static void untrack_close(int fd)
{
	for (int i = 0; i < n_open_fds; i++)
		if (open_fds[i] == fd) {
			open_fds[i] = open_fds[--n_open_fds];
			break;
		}
	close(fd);
}

static int close_all(void **state)
{
	(void)state;
	for (int i = 0; i < n_open_fds; i++)
		close(open_fds[i]);
	n_open_fds = 0;
	if (ready)
		be_pod("client-a");
	return 0;
}

struct listener {
	int fd;
	const char *addr;
	uint16_t port;
	int hits;
};

static int listen_on(const char *addr, uint16_t port, int type)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, fd;

	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, addr, &s4->sin_addr);
		len = sizeof(*s4);
	}
	fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	track(fd);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
	if (type == SOCK_STREAM)
		assert_int_equal(listen(fd, 1024), 0);
	return fd;
}

static void to_sockaddr(const char *addr, uint16_t port, struct sockaddr_storage *ss,
			socklen_t *len, int family)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		char mapped[64];

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (!strchr(addr, ':')) {
			snprintf(mapped, sizeof(mapped), "::ffff:%s", addr);
			addr = mapped;
		}
		assert_int_equal(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, addr, &s4->sin_addr), 1);
		*len = sizeof(*s4);
	}
}

/* Connect a TCP socket to addr:port; returns the fd, or -errno. */
static int tcp_connect(const char *addr, uint16_t port, int family)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	to_sockaddr(addr, port, &ss, &len, family);
	if (connect(fd, (struct sockaddr *)&ss, len)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Which listener received the connection just made: accept it there. */
static int accepted_by(struct listener *ls, int n)
{
	for (int tries = 0; tries < 100; tries++) {
		for (int i = 0; i < n; i++) {
			int fd = accept4(ls[i].fd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0) {
				close(fd);
				ls[i].hits++;
				return i;
			}
		}
		usleep(1000);
	}
	return -1;
}

static void open_listeners(struct listener *ls, int n)
{
	for (int i = 0; i < n; i++) {
		ls[i].fd = listen_on(ls[i].addr, ls[i].port, SOCK_STREAM);
		ls[i].hits = 0;
	}
}

static void close_listeners(struct listener *ls, int n)
{
	for (int i = 0; i < n; i++)
		untrack_close(ls[i].fd);
}

/* ---- tests ---- */

static void test_connect_translates_and_peername_shows_vip(void **state)
{
	struct listener ls[] = { { .addr = "10.244.1.10", .port = 8080 },
				 { .addr = "10.244.1.11", .port = 8080 },
				 { .addr = "10.244.1.12", .port = 8081 } };
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	char buf[64];

	(void)state;
	assert_int_equal(apply(pods_yaml, backend_svc, NULL), 0);
	open_listeners(ls, 3);
	for (int i = 0; i < 60; i++) {
		int fd = tcp_connect("10.96.0.10", 80, AF_INET);

		assert_true(fd >= 0);
		if (i == 0) {
			assert_int_equal(getpeername(fd, (struct sockaddr *)&peer, &plen), 0);
			inet_ntop(AF_INET, &peer.sin_addr, buf, sizeof(buf));
			assert_string_equal(buf, "10.96.0.10"); /* the app sees the VIP... */
			assert_int_equal(ntohs(peer.sin_port), 80); /* ...and the service port */
		}
		assert_true(accepted_by(ls, 3) >= 0);
		close(fd);
	}
	/* Named targetPort "web": 8080 on the v1 pods, 8081 on the v2 pod; every pod used. */
	assert_true(ls[0].hits > 0 && ls[1].hits > 0 && ls[2].hits > 0);
	assert_int_equal(ls[0].hits + ls[1].hits + ls[2].hits, 60);
	close_listeners(ls, 3);
}

static void test_canary_weights_90_10(void **state)
{
	const char *vs =
		"apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		"metadata: {name: canary, namespace: default}\nspec:\n  hosts: [backend]\n  tcp:\n"
		"  - route:\n    - destination: {host: backend, subset: v2}\n      weight: 10\n"
		"    - destination: {host: backend, subset: v1}\n      weight: 90\n";
	struct listener ls[] = { { .addr = "10.244.1.10", .port = 8080 },
				 { .addr = "10.244.1.11", .port = 8080 },
				 { .addr = "10.244.1.12", .port = 8081 } };
	const int n = 2000;

	(void)state;
	assert_int_equal(apply(pods_yaml, backend_svc, subsets_dr, vs, NULL), 0);
	open_listeners(ls, 3);
	for (int i = 0; i < n; i++) {
		int fd = tcp_connect("10.96.0.10", 80, AF_INET);

		assert_true(fd >= 0);
		assert_true(accepted_by(ls, 3) >= 0);
		close(fd);
	}
	double v2 = 100.0 * ls[2].hits / n;

	fprintf(stderr, "canary split over %d connections: v1 %d+%d, v2 %d (%.1f%%)\n", n,
		ls[0].hits, ls[1].hits, ls[2].hits, v2);
	assert_true(v2 >= 7.0 && v2 <= 13.0); /* 10% +- 3 points */
	close_listeners(ls, 3);

	/* Switch to 0/100: the very next connection goes to v2 only. */
	const char *all_v2 =
		"apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		"metadata: {name: canary, namespace: default}\nspec:\n  hosts: [backend]\n  tcp:\n"
		"  - route:\n    - destination: {host: backend, subset: v2}\n      weight: 100\n"
		"    - destination: {host: backend, subset: v1}\n      weight: 0\n";

	assert_int_equal(apply(pods_yaml, backend_svc, subsets_dr, all_v2, NULL), 0);
	open_listeners(ls, 3);
	for (int i = 0; i < 100; i++) {
		int fd = tcp_connect("10.96.0.10", 80, AF_INET);

		assert_true(fd >= 0);
		assert_int_equal(accepted_by(ls, 3), 2); /* only v2 after the switch */
		close(fd);
	}
	close_listeners(ls, 3);
}

static void test_empty_service_refused(void **state)
{
	const char *empty = "apiVersion: v1\nkind: Service\nmetadata: {name: empty, namespace: default}\n"
			    "spec:\n  clusterIP: 10.96.0.20\n  ports: [{port: 9000}]\n"
			    "  selector: {app: nobody}\n";

	(void)state;
	assert_int_equal(apply(pods_yaml, backend_svc, empty, NULL), 0);
	assert_int_equal(tcp_connect("10.96.0.20", 9000, AF_INET), -ECONNREFUSED);
	assert_int_equal(tcp_connect("10.96.0.20", 9000, AF_INET6), -ECONNREFUSED);
	/* A port the service does not have is not a service address: untouched, and here
	 * unroutable. */
	assert_int_equal(tcp_connect("10.96.0.20", 9001, AF_INET), -ENETUNREACH);
}

static void test_ipv6_and_v4_mapped(void **state)
{
	struct listener ls[] = { { .addr = "fd00:10:244:1::10", .port = 8080 },
				 { .addr = "fd00:10:244:1::11", .port = 8080 },
				 { .addr = "fd00:10:244:1::12", .port = 8081 } };
	struct listener l4[] = { { .addr = "10.244.1.10", .port = 8080 },
				 { .addr = "10.244.1.11", .port = 8080 },
				 { .addr = "10.244.1.12", .port = 8081 } };
	struct sockaddr_in6 peer;
	socklen_t plen = sizeof(peer);
	char buf[64];
	int fd;

	(void)state;
	assert_int_equal(apply(pods_yaml, backend_svc, NULL), 0);
	open_listeners(ls, 3);
	fd = tcp_connect("fd00:10:96::10", 80, AF_INET6);
	assert_true(fd >= 0); /* connect6 picks an IPv6 backend for the IPv6 VIP */
	assert_true(accepted_by(ls, 3) >= 0);
	assert_int_equal(getpeername(fd, (struct sockaddr *)&peer, &plen), 0);
	inet_ntop(AF_INET6, &peer.sin6_addr, buf, sizeof(buf));
	assert_string_equal(buf, "fd00:10:96::10");
	close(fd);
	close_listeners(ls, 3);

	/* An AF_INET6 socket to the v4-mapped IPv4 VIP gets an IPv4 backend. */
	open_listeners(l4, 3);
	fd = tcp_connect("10.96.0.10", 80, AF_INET6);
	assert_true(fd >= 0);
	assert_true(accepted_by(l4, 3) >= 0);
	plen = sizeof(peer);
	assert_int_equal(getpeername(fd, (struct sockaddr *)&peer, &plen), 0);
	inet_ntop(AF_INET6, &peer.sin6_addr, buf, sizeof(buf));
	assert_string_equal(buf, "::ffff:10.96.0.10");
	close(fd);
	close_listeners(l4, 3);
}

static void test_udp_sendmsg_recvmsg(void **state)
{
	const char *be_addrs[] = { "10.244.1.10", "10.244.1.11", "10.244.1.12" };
	int be[3], cl;
	struct sockaddr_storage to, from;
	socklen_t tolen, fromlen;
	char buf[64];

	(void)state;
	assert_int_equal(apply(pods_yaml, backend_svc, NULL), 0);
	for (int i = 0; i < 3; i++)
		be[i] = listen_on(be_addrs[i], 5353, SOCK_DGRAM);

	/* Unconnected: sendto the VIP, the reply comes from the VIP. */
	cl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	to_sockaddr("10.96.0.10", 53, &to, &tolen, AF_INET);
	for (int round = 0; round < 10; round++) {
		int got = -1;

		assert_int_equal(sendto(cl, "ping", 4, 0, (struct sockaddr *)&to, tolen), 4);
		for (int tries = 0; tries < 100 && got < 0; tries++) {
			for (int i = 0; i < 3 && got < 0; i++) {
				fromlen = sizeof(from);
				if (recvfrom(be[i], buf, sizeof(buf), 0, (struct sockaddr *)&from,
					     &fromlen) == 4) {
					got = i;
					assert_int_equal(sendto(be[i], "pong", 4, 0,
								(struct sockaddr *)&from, fromlen),
							 4);
				}
			}
			if (got < 0)
				usleep(1000);
		}
		assert_true(got >= 0); /* a backend received the datagram sent to the VIP */
		fromlen = sizeof(from);
		assert_int_equal(recvfrom(cl, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen), 4);
		inet_ntop(AF_INET, &((struct sockaddr_in *)&from)->sin_addr, buf, sizeof(buf));
		assert_string_equal(buf, "10.96.0.10"); /* recvmsg4 restored the VIP */
		assert_int_equal(ntohs(((struct sockaddr_in *)&from)->sin_port), 53);
	}
	close(cl);

	/* Connected UDP: connect4 translates once, getpeername shows the VIP. */
	cl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(cl, (struct sockaddr *)&to, tolen), 0);
	fromlen = sizeof(from);
	assert_int_equal(getpeername(cl, (struct sockaddr *)&from, &fromlen), 0);
	inet_ntop(AF_INET, &((struct sockaddr_in *)&from)->sin_addr, buf, sizeof(buf));
	assert_string_equal(buf, "10.96.0.10");
	assert_int_equal(send(cl, "hi", 2, 0), 2);
	int got = -1;

	for (int tries = 0; tries < 100 && got < 0; tries++) {
		for (int i = 0; i < 3 && got < 0; i++) {
			fromlen = sizeof(from);
			if (recvfrom(be[i], buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen) == 2) {
				got = i;
				sendto(be[i], "yo", 2, 0, (struct sockaddr *)&from, fromlen);
			}
		}
		if (got < 0)
			usleep(1000);
	}
	assert_true(got >= 0);
	assert_int_equal(recv(cl, buf, sizeof(buf), 0), 2); /* reply accepted on the connected socket */
	close(cl);
	for (int i = 0; i < 3; i++)
		untrack_close(be[i]);
}

static void test_round_robin_order(void **state)
{
	const char *dr = "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
			 "metadata: {name: backend, namespace: default}\nspec:\n  host: backend\n"
			 "  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n";
	struct listener ls[] = { { .addr = "10.244.1.10", .port = 8080 },
				 { .addr = "10.244.1.11", .port = 8080 },
				 { .addr = "10.244.1.12", .port = 8081 } };
	int seq[12];

	(void)state;
	assert_int_equal(apply(pods_yaml, backend_svc, dr, NULL), 0);
	open_listeners(ls, 3);
	for (int i = 0; i < 12; i++) {
		int fd = tcp_connect("10.96.0.10", 80, AF_INET);

		assert_true(fd >= 0);
		seq[i] = accepted_by(ls, 3);
		close(fd);
	}
	for (int i = 3; i < 12; i++)
		assert_int_equal(seq[i], seq[i - 3]); /* a strict cycle over the three backends */
	assert_int_equal(ls[0].hits, 4);
	assert_int_equal(ls[1].hits, 4);
	assert_int_equal(ls[2].hits, 4);
	close_listeners(ls, 3);
}

/* Open connections to addr:port as sockops counted them. Summed over every id with that
 * address: a backend dropped by one config and re-added by the next gets a new id while the
 * old one waits out its quarantine. */
static uint64_t active_of(const char *addr, uint16_t port)
{
	uint64_t sum = 0;
	int found = 0;

	for (__u32 id = 1; id < 256; id++) {
		struct bm_backend b;
		__u64 n = 0;
		char ip[64];

		if (bpf_map_lookup_elem(dp.map_fd[BM_MAP_BACKEND], &id, &b) || !b.port)
			continue;
		inet_ntop(AF_INET, b.addr + 12, ip, sizeof(ip));
		if (strcmp(ip, addr) || ntohs(b.port) != port)
			continue;
		bpf_map_lookup_elem(dp.map_fd[BM_MAP_ACTIVE], &id, &n);
		sum += n;
		found = 1;
	}
	return found ? sum : UINT64_MAX;
}

static void test_least_request_counts_and_balances(void **state)
{
	const char *dr = "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
			 "metadata: {name: backend, namespace: default}\nspec:\n  host: backend\n"
			 "  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}\n  subsets:\n"
			 "  - {name: v1, labels: {version: v1}}\n";
	const char *vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
			 "metadata: {name: backend, namespace: default}\nspec:\n  hosts: [backend]\n"
			 "  tcp:\n  - route:\n    - destination: {host: backend, subset: v1}\n";
	struct listener ls[] = { { .addr = "10.244.1.10", .port = 8080 },
				 { .addr = "10.244.1.11", .port = 8080 } };
	int fds[40];

	(void)state;
	assert_int_equal(apply(pods_yaml, backend_svc, dr, vs, NULL), 0);
	open_listeners(ls, 2);
	for (int i = 0; i < 40; i++) {
		fds[i] = tcp_connect("10.96.0.10", 80, AF_INET);
		assert_true(fds[i] >= 0);
		assert_true(accepted_by(ls, 2) >= 0);
	}
	/* sockops counted every open connection; two choices keep the two within one. */
	assert_int_equal(active_of("10.244.1.10", 8080) + active_of("10.244.1.11", 8080), 40);
	assert_true(abs(ls[0].hits - ls[1].hits) <= 1);
	for (int i = 0; i < 40; i++)
		close(fds[i]);
	/* Closing brings the counters back down (the accepted ends are already closed). */
	for (int tries = 0; tries < 200; tries++) {
		if (!active_of("10.244.1.10", 8080) && !active_of("10.244.1.11", 8080))
			break;
		usleep(10000);
	}
	assert_int_equal(active_of("10.244.1.10", 8080), 0);
	assert_int_equal(active_of("10.244.1.11", 8080), 0);
	close_listeners(ls, 2);
}

static void test_maglev_source_ip_affinity(void **state)
{
	const char *dr = "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
			 "metadata: {name: backend, namespace: default}\nspec:\n  host: backend\n"
			 "  trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true}}}\n";
	struct listener ls[] = { { .addr = "10.244.1.10", .port = 8080 },
				 { .addr = "10.244.1.11", .port = 8080 },
				 { .addr = "10.244.1.12", .port = 8081 } };
	const char *clients[] = { "client-a", "client-d", "client-e", "client-f" };
	const char *client_ip[] = { "10.244.2.1", "10.244.2.4", "10.244.2.5", "10.244.2.6" };
	uint8_t keys[3][18];
	uint32_t *ring = malloc(BM_MAGLEV_M * sizeof(*ring));

	(void)state;
	assert_non_null(ring);
	assert_int_equal(apply(pods_yaml, backend_svc, dr, NULL), 0);
	/* The ring the agent built, recomputed here: backends sorted by address. */
	for (int i = 0; i < 3; i++) {
		struct bm_ip ip;
		uint16_t p = htons(ls[i].port);

		assert_int_equal(bm_ip_parse(ls[i].addr, &ip), 0);
		memcpy(keys[i], ip.a, 16);
		memcpy(keys[i] + 16, &p, 2);
	}
	assert_int_equal(bm_maglev_build((const uint8_t(*)[18])keys, 3, BM_MAGLEV_M, ring), 0);
	open_listeners(ls, 3);
	for (int c = 0; c < 4; c++) {
		struct bm_ip src;
		int first = -1;

		be_pod(clients[c]);
		assert_int_equal(bm_ip_parse(client_ip[c], &src), 0);
		int expect = (int)ring[bm_hash_addr(src.a, LB_SEED) % BM_MAGLEV_M];

		for (int i = 0; i < 20; i++) {
			int fd = tcp_connect("10.96.0.10", 80, AF_INET);

			assert_true(fd >= 0);
			int got = accepted_by(ls, 3);

			if (first < 0)
				first = got;
			assert_int_equal(got, first); /* same client, same backend, every time */
			close(fd);
		}
		assert_int_equal(first, expect); /* the kernel indexed the agent's ring by pod IP */
	}
	be_pod("client-a");
	close_listeners(ls, 3);
	free(ring);
}

static void test_source_labels_route(void **state)
{
	const char *vs =
		"apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
		"metadata: {name: backend, namespace: default}\nspec:\n  hosts: [backend]\n  tcp:\n"
		"  - match: [{sourceLabels: {app: canary-client}}]\n"
		"    route: [{destination: {host: backend, subset: v2}}]\n"
		"  - match: [{sourceNamespace: other}]\n"
		"    route: [{destination: {host: backend, subset: v2}}]\n"
		"  - route: [{destination: {host: backend, subset: v1}}]\n";
	struct listener ls[] = { { .addr = "10.244.1.10", .port = 8080 },
				 { .addr = "10.244.1.11", .port = 8080 },
				 { .addr = "10.244.1.12", .port = 8081 } };
	struct { const char *pod; int v2; } cases[] = {
		{ "client-a", 0 }, { "client-b", 1 }, { "client-c", 1 }, { "client-d", 0 } };

	(void)state;
	assert_int_equal(apply(pods_yaml, backend_svc, subsets_dr, vs, NULL), 0);
	open_listeners(ls, 3);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		be_pod(cases[c].pod);
		for (int i = 0; i < 10; i++) {
			int fd = tcp_connect("10.96.0.10", 80, AF_INET);
			int got;

			assert_true(fd >= 0);
			got = accepted_by(ls, 3);
			if (cases[c].v2)
				assert_int_equal(got, 2); /* sourceLabels/sourceNamespace -> v2 */
			else
				assert_true(got == 0 || got == 1); /* everyone else -> v1 */
			close(fd);
		}
	}
	/* A process outside every pod cgroup is not ours: no translation at all. */
	join_cgroup(cg_root);
	assert_int_equal(tcp_connect("10.96.0.10", 80, AF_INET), -ENETUNREACH);
	be_pod("client-a");
	close_listeners(ls, 3);
}

static void test_passthrough_resolution_none(void **state)
{
	const char *se = "apiVersion: networking.istio.io/v1beta1\nkind: ServiceEntry\n"
			 "metadata: {name: legacy, namespace: default}\nspec:\n"
			 "  hosts: [legacy.example.com]\n  addresses: [10.244.1.13]\n"
			 "  ports: [{number: 7000, name: tcp, protocol: TCP}]\n"
			 "  resolution: NONE\n  location: MESH_INTERNAL\n";
	struct listener ls[] = { { .addr = "10.244.1.13", .port = 7000 } };
	int fd;

	(void)state;
	assert_int_equal(apply(pods_yaml, backend_svc, se, NULL), 0);
	open_listeners(ls, 1);
	fd = tcp_connect("10.244.1.13", 7000, AF_INET);
	assert_true(fd >= 0);
	assert_int_equal(accepted_by(ls, 1), 0); /* kept its destination */
	close(fd);
	close_listeners(ls, 1);
}

/* ---- same-node bypass (sockops + bm_sockhash + sk_msg) ---- */

static uint64_t stat_sum(enum bm_stat idx)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 vals[256] = { 0 };
	__u32 k = idx;
	uint64_t sum = 0;

	assert_true(ncpu > 0 && ncpu <= 256);
	assert_int_equal(bpf_map_lookup_elem(dp.map_fd[BM_MAP_STATS], &k, vals), 0);
	for (int c = 0; c < ncpu; c++)
		sum += vals[c];
	return sum;
}

static int sockhash_count(void)
{
	struct bm_sockkey k, *prev = NULL;
	int n = 0;

	while (!bpf_map_get_next_key(dp.map_fd[BM_MAP_SOCKHASH], prev, &k)) {
		prev = &k;
		n++;
	}
	return n;
}

/* A deterministic byte stream: the receiver regenerates it to check every byte and its order. */
static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(bm_mix32((uint32_t)(i >> 6)) >> ((i & 3) * 8)) ^ (uint8_t)(i >> 2);
}

struct sender {
	int fd;
	uint64_t bytes;
	int shut;   /* shutdown(SHUT_WR) at the end instead of nothing */
	int err;
};

static void *send_pattern(void *arg)
{
	struct sender *s = arg;
	uint8_t buf[65536 + 17];
	uint64_t off = 0;

	while (off < s->bytes) {
		/* Odd sizes so messages straddle every boundary. */
		size_t n = 1 + (size_t)(bm_mix32((uint32_t)off) % sizeof(buf));

		if (n > s->bytes - off)
			n = (size_t)(s->bytes - off);
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(off + i);
		ssize_t w = send(s->fd, buf, n, MSG_NOSIGNAL);

		if (w < 0) {
			s->err = errno;
			return NULL;
		}
		off += (uint64_t)w;
	}
	if (s->shut)
		shutdown(s->fd, SHUT_WR);
	return NULL;
}

/* Read until EOF the way event-driven servers do (poll, then a non-blocking recv); returns the
 * bytes read, -1 at the first wrong byte, -2 on an error. (A blocking recv on a sockmap socket
 * can return a spurious EAGAIN when another thread writes to it: see docs/datapath.md.) */
static int64_t recv_pattern(int fd)
{
	uint8_t buf[70000];
	int64_t off = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, 10000) != 1)
			return -2;
		r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0) {
			fprintf(stderr, "recv: %s after %lld bytes\n", strerror(errno), (long long)off);
			return -2;
		}
		if (r == 0)
			return off;
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != pattern((uint64_t)off + (uint64_t)i)) {
				fprintf(stderr, "byte %lld differs\n", (long long)(off + i));
				return -1;
			}
		off += r;
	}
}

/* Accept the pending connection on a listener (blocking, bounded). */
static int accept_one(int lfd)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	if (poll(&p, 1, 5000) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

static const char *const one_backend =
	"apiVersion: v1\nkind: Service\nmetadata: {name: local, namespace: default}\n"
	"spec:\n  clusterIP: 10.96.0.30\n  ports: [{name: tcp, port: 7000}]\n---\n"
	"apiVersion: v1\nkind: Endpoints\nmetadata: {name: local, namespace: default}\n"
	"subsets: [{addresses: [{ip: 10.244.1.13, nodeName: n1}], ports: [{name: tcp, port: 7000}]}]\n";

/* One connection through the VIP: bytes each way, optional half-close by the client. */
static void transfer(int lfd, uint64_t up, uint64_t down)
{
	struct sender cs = { .shut = 1, .bytes = up }, ss = { .shut = 1, .bytes = down };
	pthread_t tc, ts;
	int cfd = tcp_connect("10.96.0.30", 7000, AF_INET), sfd;

	assert_true(cfd >= 0);
	sfd = accept_one(lfd);
	assert_true(sfd >= 0);
	cs.fd = cfd;
	ss.fd = sfd;
	assert_int_equal(pthread_create(&tc, NULL, send_pattern, &cs), 0);
	assert_int_equal(pthread_create(&ts, NULL, send_pattern, &ss), 0);
	/* Both directions at once; each side reads to EOF after the other's half-close. */
	int64_t got_down = recv_pattern(cfd), got_up = recv_pattern(sfd);

	pthread_join(tc, NULL);
	pthread_join(ts, NULL);
	assert_int_equal(cs.err, 0);
	assert_int_equal(ss.err, 0);
	assert_int_equal(got_up, (int64_t)up);     /* every byte, in order, then EOF */
	assert_int_equal(got_down, (int64_t)down);
	close(cfd);
	close(sfd);
}

static void test_bypass_integrity_halfclose_and_cleanup(void **state)
{
	uint64_t add0, msg0;
	int lfd;

	(void)state;
	assert_int_equal(apply(pods_yaml, one_backend, NULL), 0);
	lfd = listen_on("10.244.1.13", 7000, SOCK_STREAM);
	add0 = stat_sum(BM_STAT_BYPASS_ADD);
	msg0 = stat_sum(BM_STAT_BYPASS_MSG);
	transfer(lfd, 64ull << 20, 8ull << 20); /* 64 MiB up, 8 MiB down, concurrently */
	assert_int_equal(stat_sum(BM_STAT_BYPASS_ADD) - add0, 2); /* both ends joined */
	assert_true(stat_sum(BM_STAT_BYPASS_MSG) - msg0 > 100);   /* and their data was redirected */
	assert_int_equal(sockhash_count(), 0); /* closed sockets left the map */

	/* Many short connections, a few bytes each way. */
	add0 = stat_sum(BM_STAT_BYPASS_ADD);
	for (int i = 0; i < 300; i++)
		transfer(lfd, 1 + (uint64_t)i, 1 + (uint64_t)(i % 7));
	assert_int_equal(stat_sum(BM_STAT_BYPASS_ADD) - add0, 600);
	assert_int_equal(sockhash_count(), 0);
	untrack_close(lfd);
}

static void test_bypass_reset(void **state)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	char buf[64];
	int lfd, cfd, sfd;

	(void)state;
	assert_int_equal(apply(pods_yaml, one_backend, NULL), 0);
	lfd = listen_on("10.244.1.13", 7000, SOCK_STREAM);
	cfd = tcp_connect("10.96.0.30", 7000, AF_INET);
	assert_true(cfd >= 0);
	sfd = accept_one(lfd);
	assert_int_equal(send(cfd, "ping", 4, 0), 4);
	assert_int_equal(recv(sfd, buf, sizeof(buf), 0), 4);
	assert_int_equal(sockhash_count(), 2);
	/* The server aborts: the client must see the reset, not hang or read garbage. */
	setsockopt(sfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(sfd);
	struct pollfd p = { .fd = cfd, .events = POLLIN };

	assert_int_equal(poll(&p, 1, 5000), 1);
	errno = 0;
	assert_true(recv(cfd, buf, sizeof(buf), 0) <= 0);
	assert_true(errno == ECONNRESET || errno == 0);
	assert_true(send(cfd, "x", 1, MSG_NOSIGNAL) < 0 || send(cfd, "x", 1, MSG_NOSIGNAL) < 0);
	close(cfd);
	assert_int_equal(sockhash_count(), 0);
	untrack_close(lfd);
}

static void test_bypass_mixed_and_switch(void **state)
{
	const char *off = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bpfmesh, namespace: "
			  "istio-system}\ndata: {sameNodeBypass: \"false\"}\n";
	uint64_t add0;
	int lfd;

	(void)state;
	assert_int_equal(apply(pods_yaml, one_backend, NULL), 0);
	/* A server outside the mesh (not in the node cgroup): the client end joins, finds no peer
	 * at its first send, and keeps TCP; the data is intact. */
	join_cgroup(cg_root);
	lfd = listen_on("10.244.1.13", 7000, SOCK_STREAM);
	be_pod("client-a");
	add0 = stat_sum(BM_STAT_BYPASS_ADD);
	transfer(lfd, 4ull << 20, 1ull << 20);
	assert_int_equal(stat_sum(BM_STAT_BYPASS_ADD) - add0, 1); /* only the client end */
	untrack_close(lfd);

	/* ConfigMap istio-system/bpfmesh sameNodeBypass "false": new connections stay on TCP. */
	assert_int_equal(apply(pods_yaml, one_backend, off, NULL), 0);
	lfd = listen_on("10.244.1.13", 7000, SOCK_STREAM);
	add0 = stat_sum(BM_STAT_BYPASS_ADD);
	transfer(lfd, 1ull << 20, 1ull << 20);
	assert_int_equal(stat_sum(BM_STAT_BYPASS_ADD) - add0, 0);
	untrack_close(lfd);
}

/* ---- TC fallback, real sockets: a pod outside the mesh cgroup reaches the same Service ---- */

/* In a child: connect to the VIP from netns nsname (cgroup: mesh = the client-a pod, else the
 * root cgroup, outside the mesh), send "hi", expect "ok", check getpeername. Exit 0 on success. */
static int client_child(const char *nsname, int mesh)
{
	char path[128], buf[8];
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	int nsfd, fd;

	snprintf(path, sizeof(path), "/run/netns/%s", nsname);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || setns(nsfd, CLONE_NEWNET))
		return 10;
	if (!mesh) {
		char procs[PATH_MAX], pid[32];

		snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg_root);
		snprintf(pid, sizeof(pid), "%d", getpid());
		if (write_str(procs, pid))
			return 11;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in vip = { .sin_family = AF_INET, .sin_port = htons(80) };

	inet_pton(AF_INET, "10.96.0.10", &vip.sin_addr);
	if (connect(fd, (struct sockaddr *)&vip, sizeof(vip)))
		return 12;
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) ||
	    peer.sin_addr.s_addr != vip.sin_addr.s_addr || peer.sin_port != vip.sin_port)
		return 13;
	if (send(fd, "hi", 2, 0) != 2 || recv(fd, buf, sizeof(buf), 0) != 2 || memcmp(buf, "ok", 2))
		return 14;
	close(fd);
	return 0;
}

static void test_tc_path_and_connect_path(void **state)
{
	struct listener ls[] = { { .addr = "10.244.1.10", .port = 8080 },
				 { .addr = "10.244.1.11", .port = 8080 },
				 { .addr = "10.244.1.12", .port = 8081 } };
	char ns[32], ifn[16], cmd[512];
	uint64_t nat0, new0;
	struct bm_tc tc;

	(void)state;
	snprintf(ns, sizeof(ns), "%s", tc_ns);
	snprintf(ifn, sizeof(ifn), "vpt%d", getpid() % 100000);
	snprintf(cmd, sizeof(cmd),
		 "ip netns add %s && ip link add %s type veth peer name eth0 netns %s && "
		 "ip addr add 10.244.9.1/24 dev %s && ip link set %s up && "
		 "ip -n %s link set lo up && ip -n %s addr add 10.244.9.2/24 dev eth0 && "
		 "ip -n %s link set eth0 up && ip -n %s route add default via 10.244.9.1",
		 ns, ifn, ns, ifn, ifn, ns, ns, ns, ns);
	assert_int_equal(apply(pods_yaml, backend_svc, NULL), 0);
	if (system(cmd)) {
		snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", ns);
		system(cmd);
		fail_msg("could not make the client namespace");
	}
	assert_int_equal(bm_tc_open(&tc, &dp, ifn, NULL), 0);
	assert_int_equal(tc.attached, 2); /* ingress and egress of the pod's veth */
	open_listeners(ls, 3);
	nat0 = stat_sum(BM_STAT_TC_NAT);
	new0 = stat_sum(BM_STAT_TC_NEW);
	for (int mesh = 0; mesh < 2; mesh++)
		for (int i = 0; i < 5; i++) {
			pid_t pid = fork();
			int status = -1, got = -1;

			if (pid == 0)
				_exit(client_child(ns, mesh));
			for (int tries = 0; tries < 2000 && got < 0; tries++) {
				for (int l = 0; l < 3 && got < 0; l++) {
					int fd = accept4(ls[l].fd, NULL, NULL, SOCK_CLOEXEC);
					char buf[8];

					if (fd < 0)
						continue;
					got = l;
					assert_int_equal(recv(fd, buf, sizeof(buf), 0), 2);
					assert_int_equal(send(fd, "ok", 2, 0), 2);
					close(fd);
				}
				if (got < 0)
					usleep(1000);
			}
			waitpid(pid, &status, 0);
			assert_true(got >= 0); /* a backend got the connection */
			assert_true(WIFEXITED(status));
			assert_int_equal(WEXITSTATUS(status), 0); /* and the client saw only the VIP */
		}
	/* The 5 clients outside the mesh went through TC, the 5 inside through the connect hook. */
	assert_int_equal(stat_sum(BM_STAT_TC_NEW) - new0, 5);
	assert_true(stat_sum(BM_STAT_TC_NAT) - nat0 >= 5 * 3);
	close_listeners(ls, 3);
	bm_tc_close(&tc);
	snprintf(cmd, sizeof(cmd), "ip netns del %s", ns);
	assert_int_equal(system(cmd), 0);
}

/* ---- TC fallback for the node's own processes (bm_svc0) ---- */

/* In a child in namespace nsname: serve one connection on 10.244.9.2:8080 ("hi" -> "ok"). */
static int backend_child(const char *nsname, int ready_fd)
{
	char path[128], buf[8];
	int nsfd, lfd, fd, one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(8080) };

	snprintf(path, sizeof(path), "/run/netns/%s", nsname);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || setns(nsfd, CLONE_NEWNET))
		return 10;
	inet_pton(AF_INET, "10.244.9.2", &a.sin_addr);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 8))
		return 11;
	if (write(ready_fd, "r", 1) != 1)
		return 12;
	for (int i = 0; i < 3; i++) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };

		if (poll(&p, 1, 5000) != 1)
			return 13;
		fd = accept(lfd, NULL, NULL);
		if (fd < 0 || recv(fd, buf, sizeof(buf), 0) != 2 || send(fd, "ok", 2, 0) != 2)
			return 14;
		close(fd);
	}
	return 0;
}

/* In a child in this (node) namespace but outside the mesh cgroup: connect to the VIP. */
static int host_client(void)
{
	char procs[PATH_MAX], pid[32], buf[8];
	struct sockaddr_in vip = { .sin_family = AF_INET, .sin_port = htons(80) }, peer;
	socklen_t plen = sizeof(peer);
	int fd;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg_root);
	snprintf(pid, sizeof(pid), "%d", getpid());
	if (write_str(procs, pid))
		return 11;
	inet_pton(AF_INET, "10.96.0.40", &vip.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&vip, sizeof(vip)))
		return 12;
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) || peer.sin_addr.s_addr != vip.sin_addr.s_addr)
		return 13;
	if (send(fd, "hi", 2, 0) != 2 || recv(fd, buf, sizeof(buf), 0) != 2 || memcmp(buf, "ok", 2))
		return 14;
	close(fd);
	return 0;
}

static void test_tc_host_processes(void **state)
{
	const char *svc = "apiVersion: v1\nkind: Service\nmetadata: {name: hostsvc, namespace: default}\n"
			  "spec:\n  clusterIP: 10.96.0.40\n  ports: [{name: http, port: 80, targetPort: 8080}]\n"
			  "---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: hostsvc, namespace: default}\n"
			  "subsets: [{addresses: [{ip: 10.244.9.2}], ports: [{name: http, port: 8080}]}]\n";
	char ns[32], ifn[16], cmd[512], c;
	int pipefd[2], status;
	uint64_t new0;
	struct bm_tc tc;
	pid_t be;

	(void)state;
	snprintf(ns, sizeof(ns), "%s", tc_ns);
	snprintf(ifn, sizeof(ifn), "vph%d", getpid() % 100000);
	snprintf(cmd, sizeof(cmd),
		 "ip netns add %s && ip link add %s type veth peer name eth0 netns %s && "
		 "ip addr add 10.244.9.1/24 dev %s && ip link set %s up && "
		 "ip -n %s link set lo up && ip -n %s addr add 10.244.9.2/24 dev eth0 && "
		 "ip -n %s link set eth0 up && ip -n %s route add default via 10.244.9.1",
		 ns, ifn, ns, ifn, ifn, ns, ns, ns, ns);
	assert_int_equal(system(cmd), 0);
	/* Host mode: bm_svc0 appears; the reverse path on the veth the backend is behind. */
	assert_int_equal(bm_tc_open(&tc, &dp, NULL, ifn), 0);
	assert_true(if_nametoindex("bm_svc0") > 0);
	assert_int_equal(tc.attached, 2); /* bm_svc0 egress, and the veth's ingress */
	host_routes = 1;
	assert_int_equal(apply(pods_yaml, backend_svc, svc, NULL), 0);
	assert_int_equal(system("ip route show dev bm_svc0 | grep -q '^10.96.0.40 proto 98'"), 0);
	assert_int_equal(system("ip route show dev bm_svc0 | grep -q '^10.96.0.10 '"), 0);

	assert_int_equal(pipe(pipefd), 0);
	be = fork();
	if (be == 0)
		_exit(backend_child(ns, pipefd[1]));
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	new0 = stat_sum(BM_STAT_TC_NEW);
	for (int i = 0; i < 3; i++) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(host_client());
		waitpid(pid, &status, 0);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0); /* reached the backend, saw only the VIP */
	}
	waitpid(be, &status, 0);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(stat_sum(BM_STAT_TC_NEW) - new0, 3);

	/* A service that goes away takes its route with it. */
	assert_int_equal(apply(pods_yaml, backend_svc, NULL), 0);
	assert_int_not_equal(system("ip route show dev bm_svc0 | grep -q '^10.96.0.40 '"), 0);
	host_routes = 0;
	close(pipefd[0]);
	close(pipefd[1]);
	bm_tc_close(&tc);
	snprintf(cmd, sizeof(cmd), "ip netns del %s", ns);
	assert_int_equal(system(cmd), 0);
}

/* ---- L7: HTTP service ports sent to the agent's listener ---- */

static const char *const http_vs =
	"apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
	"metadata: {name: backend, namespace: default}\nspec:\n  hosts: [backend]\n  http:\n"
	"  - match: [{headers: {x-env: {exact: canary}}}]\n"
	"    route: [{destination: {host: backend, subset: v2}}]\n"
	"  - route: [{destination: {host: backend, subset: v1}}]\n";

/* Connect from the current pod cgroup; the connection lands on one of ls (L4) or on the
 * agent's listener lfd: returns the listener's index, n for the agent (its accepted socket in
 * *afd), -1 when nobody got it. */
static int l7_landed(int cfd, struct listener *ls, int n, int lfd, int *afd)
{
	for (int tries = 0; tries < 200; tries++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd >= 0) {
			*afd = track(fd);
			return n;
		}
		for (int i = 0; i < n; i++) {
			fd = accept4(ls[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0) {
				close(fd);
				return i;
			}
		}
		usleep(1000);
	}
	(void)cfd;
	return -1;
}

static void test_l7_redirect_to_agent(void **state)
{
	struct listener ls[] = { { .addr = "10.244.1.10", .port = 8080 },
				 { .addr = "10.244.1.11", .port = 8080 },
				 { .addr = "10.244.1.12", .port = 8081 } };
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	uint64_t red0, noag0;
	struct bm_orig o;
	char buf[64], ip[64];
	int lfd, cfd, afd = -1, mark = BM_AGENT_MARK, r;

	(void)state;
	l7_on = 1;
	assert_int_equal(apply(pods_yaml, backend_svc, subsets_dr, http_vs, NULL), 0);
	l7_on = 0;
	open_listeners(ls, 3);

	/* No listener registered (the agent is down): L4, the service keeps working. */
	noag0 = stat_sum(BM_STAT_L7_NOAGENT);
	cfd = track(tcp_connect("10.96.0.10", 80, AF_INET));
	assert_true(cfd >= 0);
	assert_true(accepted_by(ls, 3) >= 0);
	assert_int_equal(stat_sum(BM_STAT_L7_NOAGENT) - noag0, 1);

	/* The agent listens: the connection goes to it, the app still sees the VIP, and the agent
	 * finds where it was going and who called. */
	/* Made outside the node's cgroup, as the agent runs: its sockets see no hook. */
	join_cgroup(cg_root);
	lfd = listen_on("10.244.1.13", 15001, SOCK_STREAM);
	be_pod("client-a");
	assert_int_equal(bm_dp_l7_listener_set(&dp, false, lfd), 0);
	red0 = stat_sum(BM_STAT_L7_REDIRECT);
	cfd = track(tcp_connect("10.96.0.10", 80, AF_INET));
	assert_true(cfd >= 0);
	assert_int_equal(l7_landed(cfd, ls, 3, lfd, &afd), 3);
	assert_int_equal(stat_sum(BM_STAT_L7_REDIRECT) - red0, 1);
	assert_int_equal(getpeername(cfd, (struct sockaddr *)&peer, &plen), 0);
	inet_ntop(AF_INET, &peer.sin_addr, buf, sizeof(buf));
	assert_string_equal(buf, "10.96.0.10");
	assert_int_equal(ntohs(peer.sin_port), 80);
	assert_int_equal(bm_dp_orig_take(&dp, afd, &o), 0);
	struct bm_ip vip;

	memcpy(vip.a, o.vip, 16);
	bm_ip_format(&vip, ip, sizeof(ip));
	assert_string_equal(ip, "10.96.0.10");
	assert_int_equal(ntohs(o.vip_port), 80);
	assert_int_equal(o.proto, IPPROTO_TCP);
	assert_true(o.wl_id != 0); /* client-a is a known workload */
	assert_int_equal(bm_dp_orig_take(&dp, afd, &o), -ENOENT); /* taken once */
	/* Same node: the agent's end joins the bypass the client's end awaits; bytes flow. */
	assert_int_equal(sockhash_count(), 1);
	assert_int_equal(bm_dp_bypass_join(&dp, afd), 1);
	assert_int_equal(sockhash_count(), 2);
	assert_int_equal(bm_dp_bypass_join(&dp, afd), 0); /* once */
	uint64_t msg0 = stat_sum(BM_STAT_BYPASS_MSG);

	assert_int_equal(send(cfd, "GET / HTTP/1.1\r\n", 16, 0), 16);
	struct pollfd p = { .fd = afd, .events = POLLIN };

	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_int_equal(recv(afd, buf, sizeof(buf), 0), 16);
	assert_int_equal(send(afd, "HTTP/1.1 200 OK\r\n", 17, 0), 17);
	p.fd = cfd;
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_int_equal(recv(cfd, buf, sizeof(buf), 0), 17);
	assert_true(stat_sum(BM_STAT_BYPASS_MSG) - msg0 >= 2); /* both went socket to socket */
	untrack_close(cfd);
	untrack_close(afd);
	assert_int_equal(sockhash_count(), 0);

	/* The agent's own connections (SO_MARK) are never sent back to it. */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_storage ss;
	socklen_t len;

	track(fd);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)), 0);
	to_sockaddr("10.96.0.10", 80, &ss, &len, AF_INET);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
	r = l7_landed(fd, ls, 3, lfd, &afd);
	assert_true(r >= 0 && r < 3);

	/* IPv6 clients: no IPv6 listener configured, they stay at L4. */
	struct listener ls6[] = { { .addr = "fd00:10:244:1::10", .port = 8080 },
				  { .addr = "fd00:10:244:1::11", .port = 8080 },
				  { .addr = "fd00:10:244:1::12", .port = 8081 } };

	open_listeners(ls6, 3);
	cfd = track(tcp_connect("fd00:10:96::10", 80, AF_INET6));
	assert_true(cfd >= 0);
	r = l7_landed(cfd, ls6, 3, lfd, &afd);
	assert_true(r >= 0 && r < 3);
	untrack_close(cfd);

	/* The listener closes (the agent exits): the kernel forgets it, connections are L4. */
	untrack_close(lfd);
	noag0 = stat_sum(BM_STAT_L7_NOAGENT);
	cfd = track(tcp_connect("10.96.0.10", 80, AF_INET));
	assert_true(cfd >= 0);
	assert_true(accepted_by(ls, 3) >= 0);
	assert_int_equal(stat_sum(BM_STAT_L7_NOAGENT) - noag0, 1);
	close_listeners(ls6, 3);
	close_listeners(ls, 3);
	/* Without http rules the service is L4 again whatever the listener. */
	assert_int_equal(apply(pods_yaml, backend_svc, NULL), 0);
}

static void test_dangling_subset_rejected_keeps_old(void **state)
{
	const char *bad_vs =
		"apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		"metadata: {name: canary, namespace: default}\nspec:\n  hosts: [backend]\n  tcp:\n"
		"  - route: [{destination: {host: backend, subset: v3}}]\n";
	struct listener ls[] = { { .addr = "10.244.1.10", .port = 8080 },
				 { .addr = "10.244.1.11", .port = 8080 },
				 { .addr = "10.244.1.12", .port = 8081 } };
	int fd;

	(void)state;
	assert_int_equal(apply(pods_yaml, backend_svc, NULL), 0);
	assert_int_equal(apply(pods_yaml, backend_svc, subsets_dr, bad_vs, NULL), 1);
	open_listeners(ls, 3);
	fd = tcp_connect("10.96.0.10", 80, AF_INET);
	assert_true(fd >= 0); /* the rejected update did not touch the maps */
	assert_true(accepted_by(ls, 3) >= 0);
	close(fd);
	close_listeners(ls, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_connect_translates_and_peername_shows_vip, close_all),
		cmocka_unit_test_teardown(test_canary_weights_90_10, close_all),
		cmocka_unit_test_teardown(test_empty_service_refused, close_all),
		cmocka_unit_test_teardown(test_ipv6_and_v4_mapped, close_all),
		cmocka_unit_test_teardown(test_udp_sendmsg_recvmsg, close_all),
		cmocka_unit_test_teardown(test_round_robin_order, close_all),
		cmocka_unit_test_teardown(test_least_request_counts_and_balances, close_all),
		cmocka_unit_test_teardown(test_maglev_source_ip_affinity, close_all),
		cmocka_unit_test_teardown(test_source_labels_route, close_all),
		cmocka_unit_test_teardown(test_passthrough_resolution_none, close_all),
		cmocka_unit_test_teardown(test_dangling_subset_rejected_keeps_old, close_all),
		cmocka_unit_test_teardown(test_bypass_integrity_halfclose_and_cleanup, close_all),
		cmocka_unit_test_teardown(test_bypass_reset, close_all),
		cmocka_unit_test_teardown(test_bypass_mixed_and_switch, close_all),
		cmocka_unit_test_teardown(test_tc_path_and_connect_path, close_all),
		cmocka_unit_test_teardown(test_tc_host_processes, close_all),
		cmocka_unit_test_teardown(test_l7_redirect_to_agent, close_all),
	};

	struct CMUnitTest run[sizeof(tests) / sizeof(tests[0])];
	const char *only = getenv("BM_TEST_ONLY"); /* comma-separated name fragments */
	size_t n = 0;

	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		char list[512], *save = NULL;
		int keep = !only;

		snprintf(list, sizeof(list), "%s", only ? only : "");
		for (char *tok = strtok_r(list, ",", &save); tok && !keep;
		     tok = strtok_r(NULL, ",", &save))
			keep = strstr(tests[i].name, tok) != NULL;
		if (keep)
			run[n++] = tests[i];
	}
	bm_log_level = BM_LOG_WARN;
	bm_log_libbpf();
	/* The tests run in a child; this parent removes the child's pins and cgroups however
	 * it ended (a sanitizer abort skips atexit). */
	pid_t pid = fork();

	if (pid == 0)
		exit(_cmocka_run_group_tests("kernel hooks on real sockets", run, n, setup_env,
					     teardown_group));
	int status = 0;

	if (pid < 0 || waitpid(pid, &status, 0) < 0) {
		perror("fork/wait");
		return 1;
	}
	if (!find_cgroup2(cg_root, sizeof(cg_root))) {
		set_names(pid);
		teardown_env();
	}
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "test process killed by signal %d\n", WTERMSIG(status));
		return 1;
	}
	return WEXITSTATUS(status);
}
