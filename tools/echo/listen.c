/* listen.c - bm-echo's TCP listeners on [::] (dual-stack): bind, listen, and accept in
 * batches; when out of descriptors, accepting pauses briefly instead of spinning. */
#include "echo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BM_LISTEN_BACKLOG 1024
#define BM_ACCEPT_BATCH 64
#define BM_ACCEPT_PAUSE_MS 100

struct bm_listener {
	struct bm_watch w;
	struct bm_echo *echo;
	uint16_t port;
	struct bm_timer pause;	/* re-enables accept after EMFILE and the like */
};

/* A nonblocking socket bound to [::]:port with IPV6_V6ONLY off, or -errno. */
int bm_bind_any(int type, uint16_t port)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT,
				     .sin6_port = htons(port) };
	int fd, off = 0, one = 1, err;

	fd = socket(AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) < 0)
		goto fail;
	/* TCP only: lets a restarted server bind past TIME_WAIT. On UDP it would let two
	 * sockets share the port, which must fail instead. */
	if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) < 0)
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

static void listener_on_pause(struct bm_timer *t)
{
	struct bm_listener *ln = bm_container_of(t, struct bm_listener, pause);

	bm_loop_watch(&ln->echo->loop, &ln->w, EPOLLIN);
}

static void listener_on_accept(struct bm_watch *w, uint32_t events)
{
	struct bm_listener *ln = bm_container_of(w, struct bm_listener, w);
	struct bm_echo *e = ln->echo;

	(void)events;
	for (int i = 0; i < BM_ACCEPT_BATCH; i++) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int fd = accept4(w->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			bm_conn_accept(e, fd, &peer);
			continue;
		}
		switch (errno) {
		case EAGAIN:
		case EINTR:
			return;
		case ECONNABORTED:
		case EPROTO:
		case EPERM:
			continue;	/* that connection is gone; others may wait */
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			fprintf(stderr, "bm-echo: accept on port %u: %s; pausing %d ms\n", ln->port,
				strerror(errno), BM_ACCEPT_PAUSE_MS);
			if (bm_loop_watch(&e->loop, w, 0) == 0 &&
			    bm_timer_arm(&e->loop, &ln->pause, BM_ACCEPT_PAUSE_MS))
				bm_loop_watch(&e->loop, w, EPOLLIN);	/* no timer: never stay paused */
			return;
		default:
			fprintf(stderr, "bm-echo: accept on port %u: %s\n", ln->port, strerror(errno));
			return;
		}
	}
}

/* Binds and listens on every --tcp port; on failure says which port and why. */
int bm_listen_open(struct bm_echo *e)
{
	e->tcp = calloc(e->cfg.ntcp ? e->cfg.ntcp : 1, sizeof(*e->tcp));
	if (!e->tcp)
		return -ENOMEM;
	for (size_t i = 0; i < e->cfg.ntcp; i++) {
		struct bm_listener *ln = &e->tcp[i];
		int fd = bm_bind_any(SOCK_STREAM, e->cfg.tcp[i]), err;

		ln->echo = e;
		ln->port = e->cfg.tcp[i];
		bm_timer_init(&ln->pause, listener_on_pause);
		bm_watch_init(&ln->w, fd, listener_on_accept);
		if (fd < 0) {
			fprintf(stderr, "bm-echo: bind tcp [::]:%u: %s\n", ln->port, strerror(-fd));
			return fd;
		}
		if (listen(fd, BM_LISTEN_BACKLOG) < 0) {
			err = -errno;
			fprintf(stderr, "bm-echo: listen tcp [::]:%u: %s\n", ln->port, strerror(-err));
			return err;
		}
		err = bm_loop_watch(&e->loop, &ln->w, EPOLLIN);
		if (err) {
			fprintf(stderr, "bm-echo: epoll_ctl tcp [::]:%u: %s\n", ln->port, strerror(-err));
			return err;
		}
	}
	return 0;
}

/* Safe after a partial bm_listen_open: unopened listeners have fd -1 or are zeroed. */
void bm_listen_close(struct bm_echo *e)
{
	if (!e->tcp)
		return;
	for (size_t i = 0; i < e->cfg.ntcp; i++) {
		struct bm_listener *ln = &e->tcp[i];

		if (!ln->echo)
			continue;
		bm_timer_cancel(&e->loop, &ln->pause);
		bm_loop_close(&e->loop, &ln->w);
	}
	free(e->tcp);
	e->tcp = NULL;
}
