/* What the engine's fuzz targets share: an event loop, an upstream listening on an abstract
 * unix socket, and the pump that moves the fuzz input's bytes between a client socket, the
 * code under test and the upstreams. The includer defines F_DRIP, F_CLIENT_FIN, F_UP_FIN (its
 * flag bits), DRIP_CHUNK (bytes per send with F_DRIP) and MAX_UPSTREAMS first. */
#ifndef BM_FUZZ_NET_H
#define BM_FUZZ_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn.h"
#include "evloop.h"

static struct bm_evloop *loop;
static struct sockaddr_storage up_addr;
static int lfd = -1;
static uint8_t flags;

/* The loop and the upstream's listener (named after tag and the pid). 0 or -1. */
static int setup(const char *tag)
{
	struct sockaddr_un *un = (void *)&up_addr;

	loop = bm_evloop_new();
	if (!loop)
		return -1;
	un->sun_family = AF_UNIX;
	snprintf(un->sun_path + 1, sizeof(un->sun_path) - 1, "bm-fuzz-%s-%d", tag, (int)getpid());
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&up_addr, bm_sockaddr_len(&up_addr)) < 0 ||
	    listen(lfd, 64) < 0)
		return -1;
	return 0;
}

/* Moves what it can: the client's bytes in, the output of the code under test out, upstream
 * answers. */
static bool pump(int cfd, const uint8_t *cb, size_t cn, size_t *coff, int *ups, size_t *n_ups,
		 const uint8_t *ub, size_t un)
{
	char sink[65536];
	bool moved = false;
	ssize_t n;
	size_t i;

	if (*coff < cn) {
		size_t chunk = (flags & F_DRIP) ? DRIP_CHUNK : cn - *coff;

		if (chunk > cn - *coff)
			chunk = cn - *coff;
		n = send(cfd, cb + *coff, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			*coff += (size_t)n;
			moved = true;
			if (*coff == cn && (flags & F_CLIENT_FIN))
				shutdown(cfd, SHUT_WR);
		}
	}
	while ((n = recv(cfd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
		moved = true;
	while (*n_ups < MAX_UPSTREAMS) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			break;
		ups[(*n_ups)++] = fd;
		if (un)
			send(fd, ub, un, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (flags & F_UP_FIN)
			shutdown(fd, SHUT_WR);
		moved = true;
	}
	for (i = 0; i < *n_ups; i++)
		while ((n = recv(ups[i], sink, sizeof(sink), MSG_DONTWAIT)) > 0)
			moved = true;
	return moved;
}

#endif
