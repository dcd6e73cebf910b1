/* bm-agent-mapwait: the agent benchmark's probe of a node's pinned maps. It renames a config
 * file into place and times until a backend is reachable from a service entry, or counts. */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bm_svc.h"

enum { M_SVC, M_ROUTE, M_SET, M_SLOT, M_BACKEND, M__MAX };
static const char *const map_names[M__MAX] = { "bm_svc", "bm_route", "bm_set", "bm_slot",
					       "bm_backend" };
static int fds[M__MAX];

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: bm-agent-mapwait --pin-dir DIR --svc VIP:PORT[/udp] --want IP:PORT\n"
		"                        [--gone IP:PORT] [--rename SRC DST] [--timeout-ms N]\n"
		"                        [--interval-us N]\n"
		"       bm-agent-mapwait --pin-dir DIR --count\n"
		"Waits until IP:PORT is a backend of a set the service entry's default route uses\n"
		"(and --gone IP:PORT is not); with --rename, renames SRC to DST first and times from\n"
		"just before the rename. Prints rename_unix_ns=, visible_us=, polls=. Exit 0 when\n"
		"seen, 1 at the timeout, 2 on a usage or map error.\n"
		"--count prints svc_entries= and backends= (non-empty bm_backend entries).\n");
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* "a.b.c.d:port" or "[v6]:port" into a v4-mapped or v6 address and a network-order port. */
static int parse_addr(const char *s, __u8 addr[16], __be16 *port, __u8 *proto)
{
	char buf[128], *colon, *host = buf, *slash;
	struct in_addr a4;
	long p;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return -1;
	slash = strchr(buf, '/');
	if (slash) {
		*slash = '\0';
		if (!proto || (strcmp(slash + 1, "udp") && strcmp(slash + 1, "tcp")))
			return -1;
		*proto = !strcmp(slash + 1, "udp") ? IPPROTO_UDP : IPPROTO_TCP;
	}
	colon = strrchr(buf, ':');
	if (!colon)
		return -1;
	*colon = '\0';
	p = strtol(colon + 1, NULL, 10);
	if (p <= 0 || p > 65535)
		return -1;
	*port = htons((uint16_t)p);
	if (*host == '[') {
		host++;
		host[strcspn(host, "]")] = '\0';
	}
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, host, &a4) == 1) {
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &a4, 4);
		return 0;
	}
	return inet_pton(AF_INET6, host, addr) == 1 ? 0 : -1;
}

struct target {
	__u8 addr[16];
	__be16 port;
};

/* Is t a backend of any set the service entry's default route uses? -1 on a map error. */
static int reachable(const struct bm_svc_key *k, const struct target *t)
{
	struct bm_svc_val sv;
	struct bm_route r;

	if (bpf_map_lookup_elem(fds[M_SVC], k, &sv))
		return errno == ENOENT ? 0 : -1;
	if (!sv.route_id || bpf_map_lookup_elem(fds[M_ROUTE], &sv.route_id, &r))
		return 0;
	for (__u32 d = 0; d < r.n_dest && d < BM_MAX_DESTS; d++) {
		struct bm_set set;

		if (bpf_map_lookup_elem(fds[M_SET], &r.dest[d].set_id, &set))
			continue;
		for (__u32 i = 0; i < set.count && i < BM_MAX_SET_SIZE; i++) {
			struct bm_slot_key sk = { .set_id = r.dest[d].set_id, .idx = i };
			struct bm_backend be;
			__u32 id;

			if (bpf_map_lookup_elem(fds[M_SLOT], &sk, &id) ||
			    bpf_map_lookup_elem(fds[M_BACKEND], &id, &be))
				continue;
			if (be.port == t->port && !memcmp(be.addr, t->addr, 16))
				return 1;
		}
	}
	return 0;
}

static int count(void)
{
	struct bm_svc_key k, next, *prev = NULL;
	unsigned long n_svc = 0, n_be = 0;
	static const __u8 zero[16];

	while (!bpf_map_get_next_key(fds[M_SVC], prev, &next)) {
		n_svc++;
		k = next;
		prev = &k;
	}
	for (__u32 id = 1; id < BM_MAX_BACKENDS; id++) {
		struct bm_backend be;

		if (!bpf_map_lookup_elem(fds[M_BACKEND], &id, &be) &&
		    (be.port || memcmp(be.addr, zero, 16)))
			n_be++;
	}
	printf("svc_entries=%lu\nbackends=%lu\n", n_svc, n_be);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "svc", required_argument, NULL, 's' },
		{ "want", required_argument, NULL, 'w' },
		{ "gone", required_argument, NULL, 'g' },
		{ "rename", required_argument, NULL, 'r' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "interval-us", required_argument, NULL, 'i' },
		{ "count", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *pin_dir = NULL, *svc = NULL, *want = NULL, *gone = NULL, *src = NULL,
		   *dst = NULL;
	long timeout_ms = 5000, interval_us = 200;
	struct bm_svc_key key = { .proto = IPPROTO_TCP };
	struct target tw, tg;
	char path[4096];
	int c, do_count = 0;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': pin_dir = optarg; break;
		case 's': svc = optarg; break;
		case 'w': want = optarg; break;
		case 'g': gone = optarg; break;
		case 'r':
			src = optarg;
			if (optind >= argc) {
				usage(stderr);
				return 2;
			}
			dst = argv[optind++];
			break;
		case 't': timeout_ms = strtol(optarg, NULL, 10); break;
		case 'i': interval_us = strtol(optarg, NULL, 10); break;
		case 'c': do_count = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!pin_dir || (!do_count && (!svc || !want)) || timeout_ms <= 0 || timeout_ms > 600000 ||
	    interval_us < 0 || interval_us > 1000000) {
		usage(stderr);
		return 2;
	}
	for (int m = 0; m < M__MAX; m++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, map_names[m]);
		fds[m] = bpf_obj_get(path);
		if (fds[m] < 0) {
			fprintf(stderr, "bm-agent-mapwait: open %s: %s\n", path, strerror(errno));
			return 2;
		}
	}
	if (do_count)
		return count();
	if (parse_addr(svc, key.addr, &key.port, &key.proto) ||
	    parse_addr(want, tw.addr, &tw.port, NULL) ||
	    (gone && parse_addr(gone, tg.addr, &tg.port, NULL))) {
		fprintf(stderr, "bm-agent-mapwait: bad address in --svc, --want or --gone\n");
		return 2;
	}

	uint64_t t_unix = now_ns(CLOCK_REALTIME), t0 = now_ns(CLOCK_MONOTONIC), t;
	uint64_t deadline = t0 + (uint64_t)timeout_ms * 1000000ull;
	unsigned long polls = 0;

	if (src && rename(src, dst)) {
		fprintf(stderr, "bm-agent-mapwait: rename %s to %s: %s\n", src, dst, strerror(errno));
		return 2;
	}
	for (;;) {
		int w = reachable(&key, &tw), g = gone ? reachable(&key, &tg) : 0;

		polls++;
		t = now_ns(CLOCK_MONOTONIC);
		if (w < 0 || g < 0) {
			fprintf(stderr, "bm-agent-mapwait: lookup in %s: %s\n", pin_dir, strerror(errno));
			return 2;
		}
		if (w == 1 && g == 0)
			break;
		if (t > deadline) {
			printf("rename_unix_ns=%llu\nvisible_us=timeout\npolls=%lu\n",
			       (unsigned long long)t_unix, polls);
			return 1;
		}
		if (interval_us)
			usleep((useconds_t)interval_us);
	}
	printf("rename_unix_ns=%llu\nvisible_us=%llu\npolls=%lu\n", (unsigned long long)t_unix,
	       (unsigned long long)(t - t0) / 1000, polls);
	return 0;
}
