/* libFuzzer target for the HTTP/1.1 engine: fuzz bytes are a client's stream (socketpair) into
 * the real engine, plus an upstream's answer (abstract unix socket); no crash, leak or UB. */
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

/* Input: flags, client length (2 bytes LE), client bytes, then the upstream's bytes. */
#define F_FORWARD 0x01   /* route to the upstream (else answer 418 locally) */
#define F_RETRY 0x02     /* retries = 2 on 5xx, reset, connect-failure */
#define F_UP_FIN 0x04    /* the upstream half-closes after its answer */
#define F_DRIP 0x08      /* the client bytes arrive in small pieces */
#define F_CLIENT_FIN 0x10
#define F_EDITS 0x20
#define MAX_ROUNDS 400
#define MAX_UPSTREAMS 8
#define DRIP_CHUNK 7

#include "fuzz_net.h"


static void route(void *arg, const struct bm_http_req *req, struct bm_l7_decision *d)
{
	size_t i, sum = 0;

	(void)arg;
	/* Touch the whole view, as a router would. */
	for (i = 0; i < req->n_hdrs; i++)
		sum += req->hdrs[i].name_len + (req->hdrs[i].value_len ? (uint8_t)req->hdrs[i].value[0] : 0);
	sum += strlen(req->method) + strlen(req->path) + strlen(req->authority);
	if (!(flags & F_FORWARD) || req->path[0] == '*' || sum % 17 == 0) {
		d->action = BM_L7_RESPOND;
		d->status = req->attempt ? 503 : 418;
		d->body = "teapot";
		d->location = sum % 2 ? "/elsewhere" : NULL;
		return;
	}
	d->action = BM_L7_FORWARD;
	d->upstream = up_addr;
	if (flags & F_RETRY) {
		d->retries = 2;
		d->retry_on = BM_RETRY_5XX | BM_RETRY_RESET | BM_RETRY_CONNECT_FAILURE;
	}
	if (flags & F_EDITS) {
		d->rewrite_path = "/rewritten?x=1";
		d->rewrite_authority = "example.test";
		d->req_edits.remove[0].name = "x-a";
		d->req_edits.n_remove = 1;
		d->req_edits.set[0] = (struct bm_http_edit){ "x-set", "1" };
		d->req_edits.n_set = 1;
		d->resp_edits.add[0] = (struct bm_http_edit){ "x-added", "2" };
		d->resp_edits.n_add = 1;
		d->resp_edits.remove[0].name = "server";
		d->resp_edits.n_remove = 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct bm_h1_opts opts = { .head_max = 4096, .max_headers = 20,
						.retry_buffer = 1024, .buf_size = 4096 };
	struct bm_h1_proxy *px;
	int sv[2], ups[MAX_UPSTREAMS];
	size_t cn, coff = 0, n_ups = 0, i;
	const uint8_t *cb, *ub;
	int round, quiet = 0;

	if (!loop && setup("h1"))
		abort();
	if (size < 3)
		return 0;
	flags = data[0];
	cn = (size_t)data[1] | (size_t)data[2] << 8;
	if (cn > size - 3)
		cn = size - 3;
	cb = data + 3;
	ub = cb + cn;
	if (size - 3 - cn > 65536)
		return 0;
	px = bm_h1_proxy_new(loop, &opts, route, NULL);
	if (!px || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	if (bm_h1_proxy_serve(px, sv[1], NULL, 7))
		abort();
	for (round = 0; round < MAX_ROUNDS && quiet < 3; round++) {
		bool moved = pump(sv[0], cb, cn, &coff, ups, &n_ups, ub, size - 3 - cn);
		int ran = bm_evloop_run_once(loop, 0);

		if (bm_h1_proxy_stats(px)->downstream_cx_active == 0)
			break;
		quiet = (moved || ran > 0) ? 0 : quiet + 1;
	}
	bm_h1_proxy_free(px);
	bm_evloop_run_once(loop, 0); /* the deferred frees */
	close(sv[0]);
	for (i = 0; i < n_ups; i++)
		close(ups[i]);
	/* Connections the engine opened but never saw accepted. */
	while ((sv[0] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(sv[0]);
	return 0;
}
