/* libFuzzer target for the HTTP/2 front: fuzz bytes are a client's stream (socketpair) into
 * the real front and the real engine behind it, plus an upstream's answer (abstract unix
 * socket); no crash, leak or UB. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "h1.h"
#include "h2.h"

/* Input: flags, client length (2 bytes LE), client bytes, then the upstream's bytes. */
#define F_FORWARD 0x01   /* route to the upstream (else answer 418 locally) */
#define F_PREFACE 0x02   /* the client preface is sent before the client bytes */
#define F_UPGRADE 0x04   /* the client bytes go to the engine (HTTP/1.1, h2c upgrades) */
#define F_DRIP 0x08      /* the client bytes arrive in small pieces */
#define F_CLIENT_FIN 0x10
#define F_UP_FIN 0x20    /* the upstream half-closes after its answer */
#define F_DRAIN 0x40     /* the front and the engine drain halfway */
#define F_SMALL 0x80     /* tight limits: small buffers, few fields, few resets */
#define MAX_ROUNDS 400
#define MAX_UPSTREAMS 16
#define DRIP_CHUNK 5

#include "fuzz_net.h"

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static void route(void *arg, const struct bm_http_req *req, struct bm_l7_decision *d)
{
	size_t i, sum = 0;

	(void)arg;
	for (i = 0; i < req->n_hdrs; i++) /* not the engine's random x-request-id: replayable */
		if (req->hdrs[i].name_len != 12 || memcmp(req->hdrs[i].name, "x-request-id", 12))
			sum += req->hdrs[i].name_len +
			       (req->hdrs[i].value_len ? (uint8_t)req->hdrs[i].value[0] : 0);
	sum += strlen(req->method) + strlen(req->path) + strlen(req->authority);
	if (!(flags & F_FORWARD) || sum % 13 == 0) {
		d->action = BM_L7_RESPOND;
		d->status = req->http2 ? 418 : 419;
		d->body = "teapot";
		return;
	}
	d->action = BM_L7_FORWARD;
	d->upstream = up_addr;
	d->retries = sum % 2;
	d->retry_on = BM_RETRY_5XX | BM_RETRY_RESET;
}

static int h2c(void *arg, int fd, const struct bm_h1_peer *peer, const struct bm_h1_h2c *up)
{
	return bm_h2_front_upgrade(arg, fd, peer, up);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct bm_h1_opts h1o = { .head_max = 4096, .max_headers = 20,
					       .retry_buffer = 1024, .buf_size = 4096 };
	static const struct bm_h2_opts small = { .max_concurrent_streams = 4,
						 .max_header_list = 1024, .max_headers = 8,
						 .buf_size = 4096, .max_resets_per_s = 5 };
	struct bm_h1_proxy *px;
	struct bm_h2_front *f;
	int sv[2], ups[MAX_UPSTREAMS];
	size_t cn, un, pre, coff = 0, n_ups = 0, i;
	const uint8_t *cb, *ub;
	uint8_t *client;
	int round, quiet = 0;
	bool drained = false;

	if (!loop && setup("h2"))
		abort();
	if (size < 3)
		return 0;
	flags = data[0];
	cn = (size_t)data[1] | (size_t)data[2] << 8;
	if (cn > size - 3)
		cn = size - 3;
	ub = data + 3 + cn;
	un = size - 3 - cn;
	if (un > 65536)
		return 0;
	/* The preface, when asked, so the fuzzer spends its bytes on frames. */
	client = malloc(cn + sizeof(preface));
	if (!client)
		abort();
	pre = (flags & F_PREFACE) ? sizeof(preface) - 1 : 0;
	memcpy(client, preface, pre);
	memcpy(client + pre, data + 3, cn);
	cb = client;
	cn += pre;
	px = bm_h1_proxy_new(loop, &h1o, route, NULL);
	f = px ? bm_h2_front_new(loop, px, (flags & F_SMALL) ? &small : NULL) : NULL;
	if (!f || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	bm_h1_proxy_set_h2(px, h2c, NULL, f);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	if (flags & F_UPGRADE) {
		if (bm_h1_proxy_serve(px, sv[1], NULL, 7))
			abort();
	} else if (bm_h2_front_serve(f, sv[1], NULL, NULL, 0)) {
		abort();
	}
	for (round = 0; round < MAX_ROUNDS && quiet < 3; round++) {
		bool moved = pump(sv[0], cb, cn, &coff, ups, &n_ups, ub, un);
		int ran = bm_evloop_run_once(loop, 0);

		/* Drain once a stream is under way (or late): it must still finish. */
		if ((flags & F_DRAIN) && !drained &&
		    (bm_h2_front_stats(f)->streams || round == 100)) {
			drained = true;
			bm_h2_front_drain(f);
			bm_h1_proxy_drain(px);
		}
		if (!bm_h2_front_active(f) && !bm_h1_proxy_active(px))
			break;
		quiet = (moved || ran > 0) ? 0 : quiet + 1;
	}
	bm_h2_front_free(f);
	bm_h1_proxy_free(px);
	bm_evloop_run_once(loop, 0); /* the deferred frees */
	close(sv[0]);
	for (i = 0; i < n_ups; i++)
		close(ups[i]);
	/* Connections the engine opened but never saw accepted. */
	while ((sv[0] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(sv[0]);
	free(client);
	return 0;
}
