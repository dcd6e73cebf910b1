/* main.c - bm-echo, the echo server every lab pod runs: parses flags, binds all listeners,
 * announces readiness, runs the loop until SIGTERM/SIGINT and frees everything on exit. */
#include "echo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* SIGTERM/SIGINT stay blocked except inside epoll_pwait, so a stop request always wakes the
 * loop (no window between checking the flag and sleeping). SIGPIPE is ignored: a client
 * closing early or a closed stdout must not kill the server. */
static int setup_signals(sigset_t *waitmask)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };
	sigset_t block;

	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	if (sigprocmask(SIG_BLOCK, &block, waitmask) < 0)
		return -errno;
	sigdelset(waitmask, SIGTERM);
	sigdelset(waitmask, SIGINT);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* Each connection is one descriptor: make room for --max-conns plus listeners and stdio. */
static void raise_nofile(const struct bm_echo_cfg *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_conns + cfg->ntcp + cfg->nudp + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
		fprintf(stderr, "bm-echo: open file limit %lu is below --max-conns %u\n",
			(unsigned long)rl.rlim_cur, cfg->max_conns);
}

/* Written whole under a temporary name, then renamed: a watcher never sees half a file. */
static int write_ready_file(const char *path)
{
	char tmp[4096];
	int fd, err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, "ready\n", 6) != 6)
		err = errno ? -errno : -EIO;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

int main(int argc, char **argv)
{
	struct bm_echo e;
	sigset_t waitmask;
	bool ready = false;
	int ret = 1, err;

	memset(&e, 0, sizeof(e));
	e.loop.epfd = -1;
	err = bm_cli_parse(argc, argv, &e.cfg);
	if (err)
		return err > 0 ? 0 : 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	err = setup_signals(&waitmask);
	if (err) {
		fprintf(stderr, "bm-echo: signal setup: %s\n", strerror(-err));
		goto cleanup;
	}
	raise_nofile(&e.cfg);
	err = bm_loop_init(&e.loop, &stop_requested, &waitmask);
	if (err) {
		fprintf(stderr, "bm-echo: epoll_create1: %s\n", strerror(-err));
		goto cleanup;
	}
	err = bm_ident_json_build(&e);
	if (err) {
		fprintf(stderr, "bm-echo: identity: %s\n", strerror(-err));
		goto cleanup;
	}
	if (bm_listen_open(&e) || bm_udp_open(&e))
		goto cleanup;
	if (e.cfg.ready_file) {
		err = write_ready_file(e.cfg.ready_file);
		if (err) {
			fprintf(stderr, "bm-echo: ready file %s: %s\n", e.cfg.ready_file,
				strerror(-err));
			goto cleanup;
		}
	}
	ready = true;
	printf("ready\n");
	fflush(stdout);
	err = bm_loop_run(&e.loop);
	if (err) {
		fprintf(stderr, "bm-echo: epoll_pwait: %s\n", strerror(-err));
		goto cleanup;
	}
	ret = 0;
cleanup:
	/* The file says "serving"; a stopped server must not leave it behind. */
	if (ready && e.cfg.ready_file)
		unlink(e.cfg.ready_file);
	bm_conn_close_all(&e);
	bm_listen_close(&e);
	bm_udp_close(&e);
	bm_loop_fini(&e.loop);
	bm_buf_free(&e.scratch);
	bm_buf_free(&e.logline);
	free(e.ident_json);
	return ret;
}
