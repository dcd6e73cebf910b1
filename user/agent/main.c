/* bpfmesh-agent: the node agent. Standalone it reads a directory of manifests, watches it, and
 * keeps the node's kernel datapath in step; --check validates, --cleanup removes the datapath. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
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
		"  --once             apply once and exit (the datapath stays)\n");
}

static int timer_arm(int fd, long ms)
{
	struct itimerspec its = { .it_value = { ms / 1000, (ms % 1000) * 1000000L } };

	return timerfd_settime(fd, 0, &its, NULL);
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

static int run(struct bm_agent *a, int once)
{
	int ep = -1, ino = -1, sfd = -1, deb = -1, tick = -1, rc = 1;
	struct epoll_event ev, evs[8];
	sigset_t mask;

	/* Blocked before anything else: a signal that comes while the first apply runs (say, right
	 * after ready appears) waits for the loop instead of killing the agent. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if (bm_agent_start(a))
		return 1;
	if (bm_agent_apply(a) == -2)
		goto cleanup;
	if (once) {
		rc = a->applied && a->dp.committed ? 0 : 1;
		goto cleanup;
	}
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	deb = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	tick = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || ino < 0 || deb < 0 || tick < 0 || ep < 0) {
		bm_err("set up the event loop: %s", strerror(errno));
		goto cleanup;
	}
	add_watches(ino, a);
	struct itimerspec every = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };

	timerfd_settime(tick, 0, &every, NULL);
	int use_tc = a->tc_ifaces || a->tc_host_ifaces;
	int fds[] = { sfd, ino, deb, tick, use_tc ? bm_tc_event_fd(&a->tc) : -1 };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (fds[i] < 0)
			continue;
		ev.events = EPOLLIN;
		ev.data.fd = fds[i];
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev)) {
			bm_err("epoll_ctl: %s", strerror(errno));
			goto cleanup;
		}
	}
	bm_info("watching %s for node %s", a->config_dir, a->node);
	for (;;) {
		int n = epoll_wait(ep, evs, 8, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			bm_err("epoll_wait: %s", strerror(errno));
			goto cleanup;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			char buf[4096] __attribute__((aligned(8)));
			uint64_t ticks;

			if (fd == sfd) {
				struct signalfd_siginfo si;

				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGHUP) {
					bm_config_cache_touch(a->cache, NULL);
					timer_arm(deb, 1);
					continue;
				}
				bm_info("signal %u: exiting; the datapath stays pinned", si.ssi_signo);
				rc = 0;
				goto cleanup;
			} else if (fd == ino) {
				int dirs_changed = 0;
				ssize_t len;

				while ((len = read(ino, buf, sizeof(buf))) > 0)
					for (char *p = buf; p < buf + len;) {
						struct inotify_event *ie = (struct inotify_event *)p;

						dirs_changed |= (ie->mask & IN_ISDIR) != 0;
						/* The config dir's events name the files to parse again;
						 * lost events mean reading it all. */
						if (ie->mask & IN_Q_OVERFLOW)
							bm_config_cache_touch(a->cache, NULL);
						else if (ie->wd == cfg_wd && ie->len)
							bm_config_cache_touch(a->cache, ie->name);
						p += sizeof(*ie) + ie->len;
					}
				if (dirs_changed)
					add_watches(ino, a); /* kubepods may have just appeared */
				timer_arm(deb, DEBOUNCE_MS);
			} else if (fd == deb) {
				if (read(deb, &ticks, sizeof(ticks)) > 0 && bm_agent_apply(a) == -2)
					goto cleanup;
			} else if (use_tc && fd == bm_tc_event_fd(&a->tc)) {
				bm_tc_on_event(&a->tc);
			} else if (fd == tick) {
				if (read(tick, &ticks, sizeof(ticks)) <= 0)
					continue;
				bm_install_tick(&a->in);
				/* A local pod without its cgroup yet, or a last attempt that failed:
				 * try again. */
				if ((a->unresolved_pods || a->applied != a->generation) &&
				    bm_agent_apply(a) == -2)
					goto cleanup;
			}
		}
	}
cleanup:
	bm_agent_stop(a);
	if (ep >= 0)
		close(ep);
	if (ino >= 0)
		close(ino);
	if (sfd >= 0)
		close(sfd);
	if (deb >= 0)
		close(deb);
	if (tick >= 0)
		close(tick);
	return rc;
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
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct bm_agent a = { .bpffs = "/sys/fs/bpf" };
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
