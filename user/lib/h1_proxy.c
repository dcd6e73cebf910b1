/* The HTTP/1.1 engine's public face: a proxy with its options, router, outcome hook, stats
 * and upstream pool; client connections handed in by the agent; drain; teardown. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "h1_internal.h"

static void set_default(uint32_t *v, uint32_t def)
{
	if (!*v)
		*v = def;
}

struct bm_h1_proxy *bm_h1_proxy_new(struct bm_evloop *loop, const struct bm_h1_opts *opts,
				    bm_l7_route_fn route, void *arg)
{
	struct bm_h1_proxy *px;
	struct bm_h1_opts *o;

	if (!loop || !route)
		return NULL;
	px = calloc(1, sizeof(*px));
	if (!px)
		return NULL;
	px->loop = loop;
	px->route = route;
	px->route_arg = arg;
	o = &px->o;
	if (opts)
		*o = *opts;
	set_default(&o->head_timeout_ms, 10000);
	set_default(&o->idle_timeout_ms, 60000);
	set_default(&o->stream_idle_ms, 300000);
	set_default(&o->tunnel_idle_ms, 3600000);
	set_default(&o->connect_timeout_ms, 10000);
	set_default(&o->upstream_idle_ms, 30000);
	set_default(&o->max_idle_per_endpoint, 1024);
	set_default(&o->head_max, 65536);
	set_default(&o->max_headers, 100);
	set_default(&o->retry_buffer, 65536);
	set_default(&o->buf_size, 65536);
	if (o->buf_size < 4 * H1_FRAME_SLACK)
		o->buf_size = 4 * H1_FRAME_SLACK;
	if (o->head_max < 256)
		o->head_max = 256;
	/* Room for a head beyond the flow-control bound (body bytes stop at buf_size). */
	px->arena_max = 2 * (size_t)o->head_max + 4096;
	px->cli_out_max = 2 * (size_t)o->buf_size + 2 * (size_t)o->head_max + 16384;
	px->up_out_max = (size_t)o->buf_size + o->retry_buffer + 2 * (size_t)o->head_max + 16384;
	px->rnd_off = sizeof(px->rnd);
	if (h1_pool_init(&px->pool)) {
		free(px);
		return NULL;
	}
	return px;
}

int bm_h1_proxy_serve_ex(struct bm_h1_proxy *px, int client_fd, const struct bm_h1_peer *peer)
{
	if (!px || px->draining) {
		close(client_fd);
		return px ? -ESHUTDOWN : -EINVAL;
	}
	return h1_sess_new(px, client_fd, peer) ? 0 : -ENOMEM;
}

int bm_h1_proxy_serve(struct bm_h1_proxy *px, int client_fd,
		      const struct sockaddr_storage *orig_dst, uint32_t caller_wl)
{
	struct bm_h1_peer peer = { .caller_wl = caller_wl };

	if (orig_dst)
		peer.orig_dst = *orig_dst;
	return bm_h1_proxy_serve_ex(px, client_fd, &peer);
}

void bm_h1_proxy_set_h2(struct bm_h1_proxy *px, bm_h1_h2c_fn h2c, bm_h1_h2_open_fn open,
			void *arg)
{
	px->h2c = h2c;
	px->h2_open = open;
	px->h2_arg = arg;
}

const struct bm_h1_stats *bm_h1_proxy_stats(const struct bm_h1_proxy *px)
{
	return &px->st;
}

void bm_h1_proxy_set_outcome(struct bm_h1_proxy *px, bm_l7_outcome_fn fn, void *arg)
{
	px->outcome = fn;
	px->outcome_arg = arg;
}

/* Drain: a keep-alive connection between requests (or with only pipelined ones waiting)
 * closes now; a request under way is the last one (connection: close); a head being read
 * is served that way too (begin sets close_after); tunnels and closings go on. */
static void sess_drain(struct h1_sess *s)
{
	switch (s->state) {
	case H1_IDLE:
		h1_start_closing(s);
		h1_kick(s);
		break;
	case H1_WAIT:
	case H1_PENDING:
	case H1_CONNECT:
	case H1_PROXY:
		s->close_after = true;
		break;
	default:
		break;
	}
}


void bm_h1_proxy_drain(struct bm_h1_proxy *px)
{
	struct h1_sess *s;

	if (!px || px->draining)
		return;
	px->draining = true;
	/* Nothing here closes a session at once (closing ones are kicked), so the list holds. */
	for (s = px->sessions; s; s = s->next)
		sess_drain(s);
}

size_t bm_h1_proxy_active(const struct bm_h1_proxy *px)
{
	return px ? (size_t)px->st.downstream_cx_active : 0;
}

void bm_h1_proxy_free(struct bm_h1_proxy *px)
{
	if (!px)
		return;
	while (px->sessions)
		h1_sess_close(px->sessions);
	h1_shadows_free(px);
	h1_pool_fini(px);
	free(px);
}
