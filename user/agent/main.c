/* bpfmesh-agent: the node agent. Standalone it reads a directory of manifests, watches it, and
 * keeps the node's kernel datapath in step; --check validates, --cleanup removes the datapath. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "tc_host.h"

/* Quiet time after a change before reading the directory: enough to take a burst of events
 * (a rename is one) together; a re-read costs only the files that changed. */
#define DEBOUNCE_MS 2

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: bpfmesh-agent --config-dir DIR --node NAME --cgroup PATH [options]\n"
		"       bpfmesh-agent --check DIR [--node NAME]\n"
		"       bpfmesh-agent --cleanup --node NAME [--bpffs DIR]\n"
		"options:\n"
		"  --config-dir DIR   manifests (*.yaml, *.yml), watched for changes\n"
		"  --node NAME        this node: its pods are local, pins live in <bpffs>/bpfmesh/NAME\n"
		"  --cgroup PATH      cgroup v2 directory the programs attach to (pods live below it)\n"
		"  --bpffs DIR        bpffs mount (default /sys/fs/bpf, mounted if missing)\n"
		"  --state-dir DIR    status files (default /run/bpfmesh/NAME)\n"
		"  --log-level L      error, warn, info (default), debug\n"
		"  --no-sockmap       no same-node bypass (sockops/sk_msg), whatever the config says\n"
		"  --tc-ifaces LIST   TC fallback (per-packet VIP translation) on the interfaces whose\n"
		"                     names match these comma-separated globs, e.g. 'vp*' (pod veths)\n"
		"  --tc-host-ifaces LIST  the node's own processes reach VIPs too: every VIP routed to\n"
		"                     bm_svc0, replies translated back on these interfaces ('cni0,ul0')\n"
		"  --l7-addr A[,A6]   run the HTTP listener on these addresses (one IPv4, one IPv6),\n"
		"                     reachable from the pods (the node's IP, or the pod bridge's):\n"
		"                     service ports with VirtualService http rules are sent to it\n"
		"  --l7-port PORT     the HTTP listener's port (default 15001)\n"
		"  --once             apply once and exit (the datapath stays)\n");
}

/* Watch the config directory, and the pods' cgroup parents so a pod whose cgroup appears after
 * its Pod object is picked up at once. */
static int cfg_wd = -1; /* the config dir's watch */

static void add_watches(int ino, const struct bm_agent *a)
{
	char path[PATH_MAX + 16];

	cfg_wd = inotify_add_watch(ino, a->config_dir,
				   IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
					   IN_CREATE);
	if (cfg_wd < 0)
		bm_warn("watch %s: %s (changes are picked up on SIGHUP only)", a->config_dir,
			strerror(errno));
	snprintf(path, sizeof(path), "%s/kubepods", a->cgroup);
	inotify_add_watch(ino, path, IN_CREATE | IN_DELETE | IN_ONLYDIR);
	inotify_add_watch(ino, a->cgroup, IN_CREATE | IN_ONLYDIR);
}

/* The agent's event sources, all on one loop (with the HTTP listener's connections). */
struct agent_loop {
	struct bm_agent *a;
	struct bm_evloop *loop;
	struct bm_ev_file sig, ino, tc;
	struct bm_ev_timer debounce, tick;
	int rc;
};

static void fatal_apply(struct agent_loop *al)
{
	al->rc = 1;
	bm_evloop_stop(al->loop);
}

static void on_signal(struct bm_evloop *l, struct bm_ev_file *f, uint32_t events)
{
	struct agent_loop *al = f->data;
	struct signalfd_siginfo si;

	(void)events;
	if (read(f->fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGHUP) {
		bm_config_cache_touch(al->a->cache, NULL);
		bm_ev_timer_arm(l, &al->debounce, 1);
		return;
	}
	bm_info("signal %u: exiting; the datapath stays pinned", si.ssi_signo);
	al->rc = 0;
	bm_evloop_stop(l);
}

static void on_inotify(struct bm_evloop *l, struct bm_ev_file *f, uint32_t events)
{
	struct agent_loop *al = f->data;
	char buf[4096] __attribute__((aligned(8)));
	int dirs_changed = 0;
	ssize_t len;

	(void)events;
	while ((len = read(f->fd, buf, sizeof(buf))) > 0)
		for (char *p = buf; p < buf + len;) {
			struct inotify_event *ie = (struct inotify_event *)p;

			dirs_changed |= (ie->mask & IN_ISDIR) != 0;
			/* The config dir's events name the files to parse again; lost events mean
			 * reading it all. */
			if (ie->mask & IN_Q_OVERFLOW)
				bm_config_cache_touch(al->a->cache, NULL);
			else if (ie->wd == cfg_wd && ie->len)
				bm_config_cache_touch(al->a->cache, ie->name);
			p += sizeof(*ie) + ie->len;
		}
	if (dirs_changed)
		add_watches(f->fd, al->a); /* kubepods may have just appeared */
	bm_ev_timer_arm(l, &al->debounce, DEBOUNCE_MS);
}

static void on_tc(struct bm_evloop *l, struct bm_ev_file *f, uint32_t events)
{
	struct agent_loop *al = f->data;

	(void)l;
	(void)events;
	bm_tc_on_event(&al->a->tc);
}

static void on_debounce(struct bm_evloop *l, struct bm_ev_timer *t)
{
	struct agent_loop *al = t->data;

	(void)l;
	if (bm_agent_apply(al->a) == -2)
		fatal_apply(al);
}

static void on_tick(struct bm_evloop *l, struct bm_ev_timer *t)
{
	struct agent_loop *al = t->data;
	struct bm_agent *a = al->a;

	bm_ev_timer_arm(l, t, 1000);
	bm_install_tick(&a->in);
	/* A local pod without its cgroup yet, or a last attempt that failed: try again. */
	if ((a->unresolved_pods || a->applied != a->generation) && bm_agent_apply(a) == -2)
		fatal_apply(al);
}

static int run(struct bm_agent *a, int once)
{
	struct agent_loop al = { .a = a, .rc = 1 };
	int ino = -1, sfd = -1;
	sigset_t mask;

	/* Blocked before anything else: a signal that comes while the first apply runs (say, right
	 * after ready appears) waits for the loop instead of killing the agent. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error return, not a death */
	al.loop = bm_evloop_new();
	if (!al.loop) {
		bm_err("set up the event loop: out of memory");
		return 1;
	}
	a->loop = al.loop;
	bm_ev_timer_init(&al.debounce, on_debounce, &al);
	bm_ev_timer_init(&al.tick, on_tick, &al);
	if (bm_agent_start(a)) {
		bm_evloop_free(al.loop);
		return 1;
	}
	if (bm_agent_apply(a) == -2)
		goto cleanup;
	if (once) {
		al.rc = a->applied && a->dp.committed ? 0 : 1;
		goto cleanup;
	}
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (sfd < 0 || ino < 0) {
		bm_err("set up the event loop: %s", strerror(errno));
		goto cleanup;
	}
	add_watches(ino, a);
	bm_ev_file_init(&al.sig, sfd, on_signal, &al);
	bm_ev_file_init(&al.ino, ino, on_inotify, &al);
	if (bm_ev_file_set(al.loop, &al.sig, BM_EV_READ) ||
	    bm_ev_file_set(al.loop, &al.ino, BM_EV_READ) ||
	    bm_ev_timer_arm(al.loop, &al.tick, 1000)) {
		bm_err("set up the event loop: %s", strerror(errno));
		goto cleanup;
	}
	if (a->tc_ifaces || a->tc_host_ifaces) {
		bm_ev_file_init(&al.tc, bm_tc_event_fd(&a->tc), on_tc, &al);
		if (bm_ev_file_set(al.loop, &al.tc, BM_EV_READ)) {
			bm_err("set up the event loop: %s", strerror(errno));
			goto cleanup;
		}
	}
	bm_info("watching %s for node %s", a->config_dir, a->node);
	if (bm_evloop_run(al.loop))
		bm_err("event loop: %s", strerror(errno));
cleanup:
	if (al.sig.added)
		bm_ev_file_del(al.loop, &al.sig);
	if (al.ino.added)
		bm_ev_file_del(al.loop, &al.ino);
	if (al.tc.added)
		bm_ev_file_del(al.loop, &al.tc);
	bm_ev_timer_cancel(al.loop, &al.debounce);
	bm_ev_timer_cancel(al.loop, &al.tick);
	bm_agent_stop(a);
	bm_evloop_free(al.loop);
	a->loop = NULL;
	if (ino >= 0)
		close(ino);
	if (sfd >= 0)
		close(sfd);
	return al.rc;
}

/* "10.244.1.1" or "10.244.1.1,fd00::1": one address per family. 0, or -1 with a message. */
static int parse_l7_addrs(const char *arg, struct bm_l7_opts *o)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", arg);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct bm_ip ip;
		struct bm_ip *slot;
		static const struct bm_ip none;

		if (bm_ip_parse(tok, &ip)) {
			fprintf(stderr, "bpfmesh-agent: --l7-addr: not an IP address: %s\n", tok);
			return -1;
		}
		slot = bm_ip_is_v4(&ip) ? &o->addr4 : &o->addr6;
		if (memcmp(slot, &none, sizeof(none))) {
			fprintf(stderr, "bpfmesh-agent: --l7-addr: two addresses of one family\n");
			return -1;
		}
		*slot = ip;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config-dir", required_argument, NULL, 'c' },
		{ "node", required_argument, NULL, 'n' },
		{ "cgroup", required_argument, NULL, 'g' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "check", required_argument, NULL, 'C' },
		{ "cleanup", no_argument, NULL, 'X' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "once", no_argument, NULL, 'o' },
		{ "no-sockmap", no_argument, NULL, 'S' },
		{ "tc-ifaces", required_argument, NULL, 'T' },
		{ "tc-host-ifaces", required_argument, NULL, 'H' },
		{ "l7-addr", required_argument, NULL, 'A' },
		{ "l7-port", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct bm_agent a = { .bpffs = "/sys/fs/bpf", .l7o = { .port = BM_L7_DEFAULT_PORT } };
	const char *check = NULL, *state = NULL;
	int cleanup = 0, once = 0, c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': a.config_dir = optarg; break;
		case 'n': a.node = optarg; break;
		case 'g': a.cgroup = optarg; break;
		case 'b': a.bpffs = optarg; break;
		case 's': state = optarg; break;
		case 'C': check = optarg; break;
		case 'X': cleanup = 1; break;
		case 'o': once = 1; break;
		case 'S': a.no_sockmap = 1; break;
		case 'T': a.tc_ifaces = optarg; break;
		case 'H': a.tc_host_ifaces = optarg; break;
		case 'A':
			if (parse_l7_addrs(optarg, &a.l7o))
				return 2;
			a.l7_on = true;
			break;
		case 'P': {
			char *end;
			long p = strtol(optarg, &end, 10);

			if (*end || p < 1 || p > 65535) {
				fprintf(stderr, "bpfmesh-agent: --l7-port: not a port: %s\n", optarg);
				return 2;
			}
			a.l7o.port = (uint16_t)p;
			break;
		}
		case 'l':
			if (bm_log_parse_level(optarg, &bm_log_level)) {
				fprintf(stderr, "bpfmesh-agent: unknown log level %s\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bpfmesh-agent: unexpected argument %s\n", argv[optind]);
		return 2;
	}
	bm_log_libbpf();
	if (check)
		return bm_agent_check(check, a.node, stdout) ? 1 : 0;
	if (cleanup) {
		if (!a.node) {
			fprintf(stderr, "bpfmesh-agent: --cleanup needs --node\n");
			return 2;
		}
		int err = bm_dp_cleanup(a.bpffs, a.node);

		/* bm_svc0 of this network namespace, with our routes, if host mode made it. */
		if (bm_host_dev_remove())
			fprintf(stderr, "bpfmesh-agent: could not remove %s\n", BM_SVC_DEV);

		if (err) {
			fprintf(stderr, "bpfmesh-agent: cleanup of node %s: %s\n", a.node,
				strerror(-err));
			return 1;
		}
		return 0;
	}
	if (!a.config_dir || !a.node || !a.cgroup) {
		usage(stderr);
		return 2;
	}
	if (state)
		snprintf(a.state_dir, sizeof(a.state_dir), "%s", state);
	else
		snprintf(a.state_dir, sizeof(a.state_dir), "/run/bpfmesh/%s", a.node);
	return run(&a, once);
}
