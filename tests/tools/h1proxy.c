/* Test harness for the HTTP/1.1 engine (not part of the product): listens on loopback and
 * serves every connection through bm_h1_proxy with a small router set from the command line.
 * SIGUSR1 dumps the stats; SIGUSR2 drains, and the harness exits once no client is left. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "h1.h"
#include "h2.h"

#define MAX_UP 16
#define MAX_ROUTES 8
#define PATH_RING 4096 /* rewritten paths live this many requests (the router owns them) */
#define PATH_MAX_LEN 2048

/* --route PREFIX=CLUSTER[,key=value...]: requests whose path starts with PREFIX go to
 * CLUSTER ("" for none) with its pool limits; upstream, timeouts and retries may be set too
 * (-1: the harness-wide value). */
struct route {
	const char *prefix, *cluster;
	struct bm_l7_pool pool;
	struct sockaddr_storage up;
	bool has_up;
	int64_t timeout, per_try, retries, retry_on;
	bool fail_first;
};

struct harness {
	struct bm_evloop *loop;
	struct bm_h1_proxy *px;
	struct sockaddr_storage up[MAX_UP];
	size_t n_up, rr;
	uint32_t timeout, per_try, retries, retry_on, delay;
	const char *respond_prefix, *redirect_prefix, *redirect_to, *rewrite_authority;
	bool fail_first, sniff;
	struct bm_http_edits req_edits, resp_edits;
	const char *stats_file;
	struct route routes[MAX_ROUTES];
	size_t n_routes;
	FILE *outcomes;
	struct bm_ev_timer drain_timer;
	struct bm_ev_file lfile, sfile;
	int lfd, sfd;
	char (*paths)[PATH_MAX_LEN];
	size_t path_next;
	struct bm_h2_back *back; /* --h2-upstream */
	struct bm_h2_front *h2f;  /* --h2 */
	struct bm_h2_opts h2o;
	bool h2;
};

static int parse_addr(const char *s, struct sockaddr_storage *ss)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	struct sockaddr_in *in = (void *)ss;
	struct sockaddr_in6 *in6 = (void *)ss;
	long port;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	port = strtol(colon + 1, NULL, 10);
	if (port <= 0 || port > 65535)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = 0;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1 ? 0 : -1;
	}
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &in->sin_addr) == 1 ? 0 : -1;
}

static uint32_t parse_retry_on(const char *s)
{
	uint32_t v = 0;

	/* Any separator: "," on the command line, "+" inside a --route spec. */
	if (strstr(s, "5xx"))
		v |= BM_RETRY_5XX;
	if (strstr(s, "gateway-error"))
		v |= BM_RETRY_GATEWAY_ERROR;
	if (strstr(s, "reset"))
		v |= BM_RETRY_RESET;
	if (strstr(s, "connect-failure"))
		v |= BM_RETRY_CONNECT_FAILURE;
	if (strstr(s, "retriable-4xx"))
		v |= BM_RETRY_RETRIABLE_4XX;
	return v;
}

/* "name:value" (or "name" for remove) into one of an edits' lists. */
static int add_edit(struct bm_http_edit *list, size_t *n, char *arg, bool with_value)
{
	char *colon = strchr(arg, ':');

	if (*n == BM_L7_MAX_EDITS || (with_value && !colon))
		return -1;
	if (colon)
		*colon = 0;
	list[*n].name = arg;
	list[*n].value = with_value ? colon + 1 : NULL;
	(*n)++;
	return 0;
}

static int parse_route(struct harness *h, char *arg)
{
	static const char *const keys[] = { "max_connections", "max_pending", "max_requests",
					    "max_retries", "max_requests_per_conn",
					    "connect_timeout", "idle_timeout" };
	struct route *r = &h->routes[h->n_routes];
	uint32_t *lim[] = { &r->pool.max_connections, &r->pool.max_pending, &r->pool.max_requests,
			    &r->pool.max_retries, &r->pool.max_requests_per_conn,
			    &r->pool.connect_timeout_ms, &r->pool.idle_timeout_ms };
	char *eq = strchr(arg, '='), *tok, *save = NULL;

	if (h->n_routes == MAX_ROUTES || !eq)
		return -1;
	*eq = 0;
	r->prefix = arg;
	r->timeout = r->per_try = r->retries = r->retry_on = -1;
	r->cluster = eq + 1;
	tok = strchr(eq + 1, ',');
	if (tok)
		*tok++ = 0;
	for (tok = tok ? strtok_r(tok, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save)) {
		char *v = strchr(tok, '=');
		size_t i;

		if (!v)
			return -1;
		*v++ = 0;
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]) && strcmp(tok, keys[i]); i++)
			;
		if (i < sizeof(keys) / sizeof(keys[0]))
			*lim[i] = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(tok, "upstream"))
			r->has_up = !parse_addr(v, &r->up);
		else if (!strcmp(tok, "timeout"))
			r->timeout = strtol(v, NULL, 10);
		else if (!strcmp(tok, "per_try"))
			r->per_try = strtol(v, NULL, 10);
		else if (!strcmp(tok, "retries"))
			r->retries = strtol(v, NULL, 10);
		else if (!strcmp(tok, "retry_on"))
			r->retry_on = parse_retry_on(v);
		else if (!strcmp(tok, "fail_first"))
			r->fail_first = !strcmp(v, "1");
		else
			return -1;
		if (!strcmp(tok, "upstream") && !r->has_up)
			return -1;
	}
	h->n_routes++;
	return 0;
}

static void apply_route(const struct route *r, struct bm_l7_decision *d)
{
	d->cluster = r->cluster[0] ? r->cluster : NULL;
	d->pool = r->pool;
	if (r->has_up)
		d->upstream = r->up;
	if (r->timeout >= 0)
		d->timeout_ms = (uint32_t)r->timeout;
	if (r->per_try >= 0)
		d->per_try_timeout_ms = (uint32_t)r->per_try;
	if (r->retries >= 0)
		d->retries = (uint32_t)r->retries;
	if (r->retry_on >= 0)
		d->retry_on = (uint32_t)r->retry_on;
}

static void route(void *arg, const struct bm_http_req *req, struct bm_l7_decision *d)
{
	struct harness *h = arg;
	const struct route *r = NULL;

	d->route_name = "harness";
	d->cluster = "outbound|8080||upstream";
	if (h->respond_prefix && !strncmp(req->path, h->respond_prefix, strlen(h->respond_prefix))) {
		d->action = BM_L7_RESPOND;
		d->status = 418;
		d->body = "I'm a teapot\n";
		d->resp_edits = h->resp_edits;
		return;
	}
	if (h->redirect_prefix && !strncmp(req->path, h->redirect_prefix, strlen(h->redirect_prefix))) {
		d->action = BM_L7_RESPOND;
		d->status = 301;
		d->location = h->redirect_to;
		return;
	}
	d->action = BM_L7_FORWARD;
	d->upstream = h->up[h->rr++ % h->n_up];
	d->timeout_ms = h->timeout;
	d->per_try_timeout_ms = h->per_try;
	d->retries = h->retries;
	d->retry_on = h->retry_on;
	d->delay_ms = h->delay;
	d->req_edits = h->req_edits;
	d->resp_edits = h->resp_edits;
	d->rewrite_authority = h->rewrite_authority;
	if (h->back)
		d->upstream_proto = BM_L7_PROTO_H2;
	for (size_t i = 0; i < h->n_routes; i++) {
		if (!strncmp(req->path, h->routes[i].prefix, strlen(h->routes[i].prefix))) {
			r = &h->routes[i];
			apply_route(r, d);
			break;
		}
	}
	if ((r ? r->fail_first : h->fail_first) && req->attempt == 0) {
		char *p = h->paths[h->path_next++ % PATH_RING];

		snprintf(p, PATH_MAX_LEN, "%s%sstatus=503", req->path, strchr(req->path, '?') ? "&" : "?");
		d->rewrite_path = p;
	}
}

/* --h2-upstream: every FORWARD goes to its endpoint as HTTP/2 (h2c, prior knowledge) through
 * the h2 back; its counters join the stats file as h2_<name>. */
static int h2_upstream_open(void *arg, const struct sockaddr_storage *ep, const char *cluster,
			    const struct bm_l7_pool *lim)
{
	return bm_h2_back_open(((struct harness *)arg)->back, ep, cluster, lim);
}

static void h2_upstream_stats(struct harness *h, FILE *f)
{
	const struct bm_h2_stats *st;

	if (!h->back)
		return;
	st = bm_h2_back_stats(h->back);
	fprintf(f, "h2_upstream_cx %lu\nh2_upstream_cx_fail %lu\nh2_upstream_cx_active %lu\n"
		   "h2_upstream_rq %lu\nh2_upstream_rq_active %lu\nh2_upstream_reset %lu\n"
		   "h2_upstream_refused %lu\nh2_upstream_goaway %lu\nh2_upstream_overflow %lu\n",
		st->upstream_cx, st->upstream_cx_fail, st->upstream_cx_active, st->upstream_rq,
		st->upstream_rq_active, st->upstream_reset, st->upstream_refused,
		st->upstream_goaway, st->upstream_overflow);
}

/* ---- --h2: the HTTP/2 front before the engine (h2.h). A client whose first bytes are the
 * preface goes to the front; HTTP/1 to the engine, whose h2c upgrades come back to the front. */
static int h2c_take(void *arg, int fd, const struct bm_h1_peer *peer, const struct bm_h1_h2c *up)
{
	return bm_h2_front_upgrade(((struct harness *)arg)->h2f, fd, peer, up);
}

static int h2_setup(struct harness *h)
{
	h->h2f = bm_h2_front_new(h->loop, h->px, &h->h2o);
	if (!h->h2f) {
		fprintf(stderr, "h1proxy: h2 front: out of memory\n");
		return -1;
	}
	/* One hook set for both halves (--h2-upstream's open, when given). */
	bm_h1_proxy_set_h2(h->px, h2c_take, h->back ? h2_upstream_open : NULL, h);
	return 0;
}

static void h2_dump(const struct harness *h, FILE *f)
{
	const struct bm_h2_stats *st = h->h2f ? bm_h2_front_stats(h->h2f) : NULL;

	if (st)
		fprintf(f, "h2_downstream_cx %lu\nh2_downstream_cx_active %lu\nh2_upgrades %lu\n"
			   "h2_streams %lu\nh2_streams_active %lu\nh2_rx_reset %lu\nh2_tx_reset %lu\n"
			   "h2_goaway_sent %lu\nh2_protocol_errors %lu\nh2_headers_too_large %lu\n",
			st->downstream_cx, st->downstream_cx_active, st->upgrades, st->streams,
			st->streams_active, st->rx_reset, st->tx_reset, st->goaway_sent,
			st->protocol_errors, st->headers_too_large);
}

/* --outcomes FILE: "<outcome> <status> <endpoint> <cluster>" per attempt, flushed. */
static void on_outcome(void *arg, const char *cluster, const struct sockaddr_storage *ep,
		       enum bm_l7_outcome what, int status)
{
	static const char *const names[] = { "?", "response", "connect_fail", "reset", "timeout" };
	const struct sockaddr_in *in = (const void *)ep;
	struct harness *h = arg;
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ep->ss_family == AF_INET)
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
	fprintf(h->outcomes, "%s %d %s:%u %s\n", what <= BM_L7_OUT_TIMEOUT ? names[what] : "?",
		status, ip, ntohs(in->sin_port), cluster ? cluster : "-");
	fflush(h->outcomes);
}

static void dump_stats(struct harness *h)
{
	const struct bm_h1_stats *st = bm_h1_proxy_stats(h->px);
	FILE *f;

	if (!h->stats_file || !(f = fopen(h->stats_file, "w")))
		return;
	fprintf(f, "downstream_cx %lu\ndownstream_cx_active %lu\nrequests %lu\n",
		st->downstream_cx, st->downstream_cx_active, st->requests);
	for (int i = 1; i <= 5; i++)
		fprintf(f, "responses_%dxx %lu\n", i, st->responses[i]);
	fprintf(f, "local_replies %lu\nupstream_cx %lu\nupstream_cx_fail %lu\nupstream_cx_active %lu\n"
		   "upstream_reuse %lu\nupstream_reset %lu\nretries %lu\ntimeouts %lu\n"
		   "per_try_timeouts %lu\nhead_timeouts %lu\nbad_requests %lu\ntoo_large %lu\n"
		   "overflows %lu\nupgrades %lu\n",
		st->local_replies, st->upstream_cx, st->upstream_cx_fail, st->upstream_cx_active,
		st->upstream_reuse, st->upstream_reset, st->retries, st->timeouts,
		st->per_try_timeouts, st->head_timeouts, st->bad_requests, st->too_large,
		st->overflows, st->upgrades);
	fprintf(f, "cx_overflow %lu\nrq_pending_total %lu\nrq_pending_active %lu\n"
		   "rq_pending_overflow %lu\nretry_overflow %lu\n",
		st->cx_overflow, st->rq_pending_total, st->rq_pending_active,
		st->rq_pending_overflow, st->retry_overflow);
	h2_upstream_stats(h, f);
	h2_dump(h, f);
	fclose(f);
}

/* --sniff: peek at the first bytes; HTTP goes to the engine, anything else is relayed. */
struct pending {
	struct harness *h;
	int fd, tries;
	struct sockaddr_storage dst;
	struct bm_ev_timer t;
	struct bm_ev_hook hook; /* still undecided when the loop is freed */
};

static void pending_drop(struct bm_evloop *l, struct bm_ev_hook *hk)
{
	struct pending *p = bm_container_of(hk, struct pending, hook);

	bm_ev_timer_cancel(l, &p->t);
	close(p->fd);
	free(p);
}

static void sniff_timer(struct bm_evloop *l, struct bm_ev_timer *t)
{
	struct pending *p = t->data;
	char buf[64];
	ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	int verdict = n > 0 ? bm_h1_sniff(buf, (size_t)n) : 0;
	int h2 = n > 0 && p->h->h2f ? bm_h2_sniff(buf, (size_t)n) : -1;
	struct bm_h1_peer peer = { .orig_dst = p->dst };

	if (n == 0 || (n < 0 && errno != EAGAIN)) {
		bm_ev_hook_del(l, &p->hook);
		pending_drop(l, &p->hook);
		return;
	}
	if ((verdict == 0 || h2 == 0) && ++p->tries < 100 && n < (ssize_t)sizeof(buf)) {
		bm_ev_timer_arm(l, t, 5);
		return;
	}
	bm_ev_hook_del(l, &p->hook);
	if (h2 == 1)
		bm_h2_front_serve(p->h->h2f, p->fd, &peer, NULL, 0);
	else if (verdict == 1 || !p->h->sniff)
		bm_h1_proxy_serve(p->h->px, p->fd, &p->dst, 0);
	else
		bm_tcp_relay_serve(l, p->fd, &p->h->up[0]);
	free(p);
}

static void on_accept(struct bm_evloop *l, struct bm_ev_file *f, uint32_t ev)
{
	struct harness *h = f->data;

	(void)ev;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage dst;
		socklen_t len = sizeof(dst);
		int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (getsockname(fd, (struct sockaddr *)&dst, &len) < 0)
			memset(&dst, 0, sizeof(dst));
		if (h->sniff || h->h2f) {
			struct pending *p = calloc(1, sizeof(*p));

			if (!p) {
				close(fd);
				continue;
			}
			p->h = h;
			p->fd = fd;
			p->dst = dst;
			bm_ev_timer_init(&p->t, sniff_timer, p);
			bm_ev_timer_arm(l, &p->t, 1);
			bm_ev_hook_add(l, &p->hook, pending_drop);
			continue;
		}
		/* After a drain the engine refuses (and closes) it: that is under test. */
		if (bm_h1_proxy_serve(h->px, fd, &dst, 0) == -ENOMEM)
			fprintf(stderr, "h1proxy: serve: out of memory\n");
	}
}

/* Draining: done once every client connection has closed. */
static void drain_check(struct bm_evloop *l, struct bm_ev_timer *t)
{
	struct harness *h = t->data;

	if (!bm_h1_proxy_active(h->px) && !bm_h2_front_active(h->h2f))
		bm_evloop_stop(l);
	else
		bm_ev_timer_arm(l, t, 20);
}

static void on_signal(struct bm_evloop *l, struct bm_ev_file *f, uint32_t ev)
{
	struct harness *h = f->data;
	struct signalfd_siginfo si;

	(void)ev;
	while (read(h->sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			dump_stats(h);
		} else if (si.ssi_signo == SIGUSR2) {
			bm_h2_front_drain(h->h2f);
			bm_h1_proxy_drain(h->px);
			drain_check(l, &h->drain_timer);
		} else {
			bm_evloop_stop(l);
		}
	}
}

static int listen_on(const struct sockaddr_storage *a)
{
	int fd = socket(a->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)a, bm_sockaddr_len(a)) < 0 || listen(fd, 1024) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: h1proxy --listen IP:PORT --upstream IP:PORT[,IP:PORT...] [--timeout MS]\n"
		"  [--per-try-timeout MS] [--retries N] [--retry-on LIST] [--delay MS] [--fail-first]\n"
		"  [--respond PREFIX] [--redirect PREFIX=LOCATION] [--rewrite-authority HOST]\n"
		"  [--set-req N:V] [--add-req N:V] [--remove-req N] [--set-resp N:V] [--add-resp N:V]\n"
		"  [--remove-resp N] [--head-timeout MS] [--idle-timeout MS] [--connect-timeout MS]\n"
		"  [--max-requests-per-conn N] [--max-conns N] [--sniff] [--mark N] [--stats FILE]\n"
		"  [--ready-file FILE] [--outcomes FILE] [--h2-upstream] [--h2] [--h2-idle-timeout MS]\n"
		"  [--route PREFIX=CLUSTER[,max_connections=N][,max_pending=N][,max_requests=N]\n"
		"     [,max_retries=N][,max_requests_per_conn=N][,connect_timeout=MS][,idle_timeout=MS]\n"
		"     [,upstream=IP:PORT][,timeout=MS][,per_try=MS][,retries=N][,retry_on=A+B]\n"
		"     [,fail_first=1]]...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "listen", 1, 0, 'l' }, { "upstream", 1, 0, 'u' }, { "timeout", 1, 0, 't' },
		{ "per-try-timeout", 1, 0, 'T' }, { "retries", 1, 0, 'r' }, { "retry-on", 1, 0, 'o' },
		{ "delay", 1, 0, 'd' }, { "fail-first", 0, 0, 'F' }, { "respond", 1, 0, 'R' },
		{ "redirect", 1, 0, 'D' }, { "rewrite-authority", 1, 0, 'A' }, { "set-req", 1, 0, 1 },
		{ "add-req", 1, 0, 2 }, { "remove-req", 1, 0, 3 }, { "set-resp", 1, 0, 4 },
		{ "add-resp", 1, 0, 5 }, { "remove-resp", 1, 0, 6 }, { "head-timeout", 1, 0, 7 },
		{ "idle-timeout", 1, 0, 8 }, { "connect-timeout", 1, 0, 9 },
		{ "max-requests-per-conn", 1, 0, 10 }, { "max-conns", 1, 0, 11 }, { "sniff", 0, 0, 12 },
		{ "stats", 1, 0, 13 }, { "ready-file", 1, 0, 14 }, { "mark", 1, 0, 15 },
		{ "route", 1, 0, 16 }, { "outcomes", 1, 0, 17 }, { "h2-upstream", 0, 0, 18 },
		{ "h2", 0, 0, 19 }, { "h2-idle-timeout", 1, 0, 20 }, { 0, 0, 0, 0 },
	};
	struct harness h = { .lfd = -1, .sfd = -1 };
	struct bm_h1_opts opts = { 0 };
	struct sockaddr_storage laddr;
	const char *ready = NULL, *outcomes = NULL;
	bool have_listen = false, h2_upstream = false;
	sigset_t mask;
	int c, rc = 1;

	bm_ev_timer_init(&h.drain_timer, drain_check, &h);
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		char *tok, *save = NULL;
		int bad = 0;

		switch (c) {
		case 'l': bad = parse_addr(optarg, &laddr); have_listen = true; break;
		case 'u':
			for (tok = strtok_r(optarg, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
				bad |= h.n_up == MAX_UP || parse_addr(tok, &h.up[h.n_up++]);
			break;
		case 't': h.timeout = (uint32_t)atoi(optarg); break;
		case 'T': h.per_try = (uint32_t)atoi(optarg); break;
		case 'r': h.retries = (uint32_t)atoi(optarg); break;
		case 'o': h.retry_on = parse_retry_on(optarg); break;
		case 'd': h.delay = (uint32_t)atoi(optarg); break;
		case 'F': h.fail_first = true; break;
		case 'R': h.respond_prefix = optarg; break;
		case 'D':
			h.redirect_prefix = optarg;
			h.redirect_to = strchr(optarg, '=');
			bad = !h.redirect_to;
			if (!bad)
				*(char *)h.redirect_to++ = 0;
			break;
		case 'A': h.rewrite_authority = optarg; break;
		case 1: bad = add_edit(h.req_edits.set, &h.req_edits.n_set, optarg, true); break;
		case 2: bad = add_edit(h.req_edits.add, &h.req_edits.n_add, optarg, true); break;
		case 3: bad = add_edit(h.req_edits.remove, &h.req_edits.n_remove, optarg, false); break;
		case 4: bad = add_edit(h.resp_edits.set, &h.resp_edits.n_set, optarg, true); break;
		case 5: bad = add_edit(h.resp_edits.add, &h.resp_edits.n_add, optarg, true); break;
		case 6: bad = add_edit(h.resp_edits.remove, &h.resp_edits.n_remove, optarg, false); break;
		case 7: opts.head_timeout_ms = (uint32_t)atoi(optarg); break;
		case 8: opts.idle_timeout_ms = (uint32_t)atoi(optarg); break;
		case 9: opts.connect_timeout_ms = (uint32_t)atoi(optarg); break;
		case 10: opts.max_requests_per_conn = (uint32_t)atoi(optarg); break;
		case 11: opts.max_conns_per_endpoint = (uint32_t)atoi(optarg); break;
		case 12: h.sniff = true; break;
		case 13: h.stats_file = optarg; break;
		case 14: ready = optarg; break;
		case 15: bm_conn_upstream_mark = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 16: bad = parse_route(&h, optarg); break;
		case 17: outcomes = optarg; break;
		case 18: h2_upstream = true; break;
		case 19: h.h2 = true; break;
		case 20: h.h2o.idle_timeout_ms = (uint32_t)atoi(optarg); break;
		default: usage();
		}
		if (bad) {
			fprintf(stderr, "h1proxy: bad option value: %s\n", optarg);
			usage();
		}
	}
	if (!have_listen || !h.n_up)
		usage();
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	h.paths = calloc(PATH_RING, PATH_MAX_LEN);
	h.loop = bm_evloop_new();
	h.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	h.lfd = listen_on(&laddr);
	if (!h.paths || !h.loop || h.sfd < 0 || h.lfd < 0) {
		fprintf(stderr, "h1proxy: setup (listen, signalfd, memory): %s\n", strerror(errno));
		goto cleanup;
	}
	h.px = bm_h1_proxy_new(h.loop, &opts, route, &h);
	if (!h.px)
		goto cleanup;
	if (h2_upstream) {
		h.back = bm_h2_back_new(h.loop, NULL);
		if (!h.back) {
			fprintf(stderr, "h1proxy: h2 back: out of memory\n");
			goto cleanup;
		}
		bm_h1_proxy_set_h2(h.px, NULL, h2_upstream_open, &h);
	}
	if (h.h2 && h2_setup(&h))
		goto cleanup;
	if (outcomes) {
		h.outcomes = fopen(outcomes, "a");
		if (!h.outcomes) {
			fprintf(stderr, "h1proxy: open %s: %s\n", outcomes, strerror(errno));
			goto cleanup;
		}
		bm_h1_proxy_set_outcome(h.px, on_outcome, &h);
	}
	bm_ev_file_init(&h.lfile, h.lfd, on_accept, &h);
	bm_ev_file_init(&h.sfile, h.sfd, on_signal, &h);
	if (bm_ev_file_set(h.loop, &h.lfile, BM_EV_READ) || bm_ev_file_set(h.loop, &h.sfile, BM_EV_READ))
		goto cleanup;
	if (ready) {
		FILE *f = fopen(ready, "w");

		if (f) {
			fputs("ready\n", f);
			fclose(f);
		}
	}
	rc = bm_evloop_run(h.loop) ? 1 : 0;
	dump_stats(&h);
cleanup:
	if (h.loop)
		bm_ev_timer_cancel(h.loop, &h.drain_timer);
	bm_h2_front_free(h.h2f);
	bm_h1_proxy_free(h.px);
	bm_h2_back_free(h.back);
	if (h.outcomes)
		fclose(h.outcomes);
	if (h.lfd >= 0)
		close(h.lfd);
	if (h.sfd >= 0)
		close(h.sfd);
	bm_evloop_free(h.loop);
	free(h.paths);
	return rc;
}
