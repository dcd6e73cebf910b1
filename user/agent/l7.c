/* The agent's HTTP listener (l7.h): accept, find the original destination the kernel filed,
 * sniff the first bytes, then the HTTP/1.1 engine or a TCP relay. */
#include "l7.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bm_svc.h"
#include "log.h"

/* A connection whose first bytes are not in yet. */
struct bm_l7_sniff {
	struct bm_l7_sniff *prev, *next;
	struct bm_l7 *l;
	struct bm_ev_file ev;
	struct bm_ev_timer timer;
	struct sockaddr_storage orig;
	uint32_t wl_id;
};

static void sniff_unlink(struct bm_l7_sniff *s)
{
	struct bm_l7 *l = s->l;

	if (s->prev)
		s->prev->next = s->next;
	else
		l->sniffs = s->next;
	if (s->next)
		s->next->prev = s->prev;
	bm_ev_file_del(l->loop, &s->ev);
	bm_ev_timer_cancel(l->loop, &s->timer);
}

static void sniff_close(struct bm_l7_sniff *s)
{
	sniff_unlink(s);
	close(s->ev.fd);
	free(s);
}

static void as_tcp(struct bm_l7 *l, int fd, const struct sockaddr_storage *orig)
{
	struct sockaddr_storage up;

	if (bm_router_tcp_pick(l->router, orig, &up)) {
		l->cnt.tcp_no_upstream++;
		close(fd);
		return;
	}
	l->cnt.tcp++;
	if (bm_tcp_relay_serve(l->loop, fd, &up))
		bm_warn("l7: TCP relay: out of memory or no socket");
}

enum sniffed { SNIFF_TCP, SNIFF_H1, SNIFF_H2 };

/* The first bytes decide: HTTP/1 goes to the engine, the HTTP/2 preface to the h2 front (and
 * its streams to the engine), anything else is relayed as TCP. */
static void sniff_done(struct bm_l7_sniff *s, enum sniffed what)
{
	struct bm_l7 *l = s->l;
	struct bm_h1_peer peer = { .orig_dst = s->orig, .caller_wl = s->wl_id };
	int fd = s->ev.fd;

	sniff_unlink(s);
	free(s);
	switch (what) {
	case SNIFF_TCP:
		as_tcp(l, fd, &peer.orig_dst);
		return;
	case SNIFF_H2:
		l->cnt.http2++;
		if (bm_h2_front_serve(l->h2f, fd, &peer, NULL, 0))
			bm_warn("l7: serving an HTTP/2 connection failed (out of memory)");
		return;
	case SNIFF_H1:
		l->cnt.http++;
		if (bm_h1_proxy_serve_ex(l->px, fd, &peer))
			bm_warn("l7: serving a connection failed (out of memory)");
		return;
	}
}

static void sniff_event(struct bm_evloop *loop, struct bm_ev_file *f, uint32_t events)
{
	struct bm_l7_sniff *s = f->data;
	char buf[128];
	ssize_t n;
	int r;

	(void)loop;
	(void)events;
	n = recv(f->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		sniff_close(s); /* closed or reset before a byte */
		return;
	}
	r = bm_h2_sniff(buf, (size_t)n);
	if (r == 1) {
		sniff_done(s, SNIFF_H2);
		return;
	}
	if (r == 0)
		return; /* a prefix of the HTTP/2 preface: wait for the rest */
	r = bm_h1_sniff(buf, (size_t)n);
	if (r == 0 && (size_t)n < sizeof(buf))
		return; /* could still be HTTP: wait for more */
	sniff_done(s, r == 1 ? SNIFF_H1 : SNIFF_TCP);
}

static void sniff_timeout(struct bm_evloop *loop, struct bm_ev_timer *t)
{
	(void)loop;
	sniff_done(t->data, SNIFF_TCP); /* a server-first protocol, or a silent client: TCP */
}

static void sockaddr_of(const uint8_t *a16, uint16_t port_be, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (bm_ip_is_v4((const struct bm_ip *)a16)) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a16 + 12, 4);
		s4->sin_port = port_be;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a16, 16);
		s6->sin6_port = port_be;
	}
}

/* The other way: the address (v4-mapped for IPv4) and host-order port of sa. -1 when it is
 * not IP. */
static int ip_of(const struct sockaddr *sa, struct bm_l7_ep *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		out->ip.a[10] = out->ip.a[11] = 0xff;
		memcpy(out->ip.a + 12, &s4->sin_addr, 4);
		out->port = ntohs(s4->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		memcpy(out->ip.a, &s6->sin6_addr, 16);
		out->port = ntohs(s6->sin6_port);
		return 0;
	}
	return -1;
}

static int ep_cmp(const void *a, const void *b)
{
	const struct bm_l7_ep *x = a, *y = b;
	int c = memcmp(x->ip.a, y->ip.a, sizeof(x->ip.a));

	return c ? c : (int)x->port - (int)y->port;
}

int bm_l7_set_bypass(struct bm_l7 *l, bool on, const struct bm_l7_ep *eps, size_t n)
{
	struct bm_l7_ep *r = NULL;

	l->bypass_on = on;
	if (n) {
		r = malloc(n * sizeof(*r));
		if (!r)
			return -ENOMEM;
		memcpy(r, eps, n * sizeof(*r));
		qsort(r, n, sizeof(*r), ep_cmp);
	}
	free(l->remote);
	l->remote = r;
	l->n_remote = n;
	return 0;
}

static bool same_subnet(const struct bm_ip *a, const struct bm_ip *b, const struct bm_ip *mask)
{
	for (size_t i = 0; i < sizeof(a->a); i++)
		if ((a->a[i] ^ b->a[i]) & mask->a[i])
			return false;
	return true;
}

/* Before connect(): an endpoint not known to be elsewhere gets a socket bound to the
 * listener's address (the pods reach the agent there, so the endpoint reaches it too), and
 * the pair filed in the kernel, so that sockops adds the endpoint's end when its handshake
 * completes; after it, the agent's end joins (up_connected). Any failure: plain TCP. */
static bool up_prepare(void *arg, int fd, const struct sockaddr_storage *to)
{
	struct bm_l7 *l = arg;
	const typeof(l->src[0]) *src = &l->src[to->ss_family == AF_INET6];
	struct sockaddr_storage from;
	struct bm_l7_ep key;

	if (!l->bypass_on || !src->ok || ip_of((const struct sockaddr *)to, &key) ||
	    !same_subnet(&key.ip, &src->addr, &src->mask) ||
	    (l->n_remote && bsearch(&key, l->remote, l->n_remote, sizeof(key), ep_cmp)))
		return false;
	sockaddr_of(src->addr.a, 0, &from);
	if (bind(fd, (struct sockaddr *)&from, bm_sockaddr_len(&from)) < 0)
		return false; /* connect() picks the source: no bypass for this one */
	return bm_dp_bypass_expect(l->dp, fd, to) == 0;
}

static void up_connected(void *arg, int fd)
{
	struct bm_l7 *l = arg;

	if (bm_dp_bypass_add(l->dp, fd) == 0)
		l->cnt.bypass_up++;
}

/* A usable source for upstream connections: an address of an interface, not loopback (an
 * endpoint in a pod cannot answer the node's loopback); *mask gets its netmask, in the same
 * form (v4-mapped for IPv4, whose mapping prefix then compares as equal). */
static bool src_usable(const struct bm_ip *a, struct bm_ip *mask)
{
	static const struct bm_ip none, lo6 = { .a = { [15] = 1 } };
	struct ifaddrs *ifs, *i;
	struct bm_l7_ep ifa, nm;
	bool found = false;

	if (!memcmp(a, &none, sizeof(none)) || !memcmp(a, &lo6, sizeof(lo6)) ||
	    (bm_ip_is_v4(a) && a->a[12] == 127) || getifaddrs(&ifs))
		return false;
	for (i = ifs; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr || !i->ifa_netmask || ip_of(i->ifa_addr, &ifa) ||
		    memcmp(&ifa.ip, a, sizeof(*a)) || ip_of(i->ifa_netmask, &nm))
			continue;
		*mask = nm.ip;
		found = true;
	}
	freeifaddrs(ifs);
	return found;
}

static void on_accept(struct bm_l7 *l, int fd)
{
	struct bm_l7_sniff *s;
	struct bm_orig o;

	l->cnt.accepted++;
	if (bm_dp_orig_take(l->dp, fd, &o)) {
		/* Not sent by our hook (someone connected to the port directly), or its record was
		 * evicted: there is nowhere to route it. */
		l->cnt.no_orig++;
		close(fd);
		return;
	}
	if (l->bypass && bm_dp_bypass_join(l->dp, fd) > 0)
		l->cnt.bypass_joined++;
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return;
	}
	s->l = l;
	sockaddr_of(o.vip, o.vip_port, &s->orig);
	s->wl_id = o.wl_id;
	bm_ev_file_init(&s->ev, fd, sniff_event, s);
	bm_ev_timer_init(&s->timer, sniff_timeout, s);
	s->next = l->sniffs;
	if (l->sniffs)
		l->sniffs->prev = s;
	l->sniffs = s;
	if (bm_ev_file_set(l->loop, &s->ev, BM_EV_READ) ||
	    bm_ev_timer_arm(l->loop, &s->timer, BM_L7_SNIFF_MS))
		sniff_close(s);
}

static void lsn_event(struct bm_evloop *loop, struct bm_ev_file *f, uint32_t events)
{
	struct bm_l7 *l = f->data;

	(void)loop;
	(void)events;
	for (int i = 0; i < 64; i++) { /* a bounded batch: other work gets its turn */
		int fd = accept4(f->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				bm_warn("l7: accept: %s", strerror(errno));
			return;
		}
		on_accept(l, fd);
	}
}

/* The engine's HTTP/2 hooks (bm_h1_proxy_set_h2): h2c upgrades to the front, HTTP/2
 * clusters through the back. */
static int h2c_upgrade(void *arg, int fd, const struct bm_h1_peer *peer,
		       const struct bm_h1_h2c *up)
{
	struct bm_l7 *l = arg;

	l->cnt.http2++;
	return bm_h2_front_upgrade(l->h2f, fd, peer, up);
}

static int h2_open(void *arg, const struct sockaddr_storage *ep, const char *cluster,
		   const struct bm_l7_pool *lim)
{
	return bm_h2_back_open(((struct bm_l7 *)arg)->h2b, ep, cluster, lim);
}

static void route(void *arg, const struct bm_http_req *req, struct bm_l7_decision *d)
{
	struct bm_l7 *l = arg;

	if (!l->router) {
		memset(d, 0, sizeof(*d));
		d->action = BM_L7_RESPOND;
		d->status = 503;
		d->body = "no config applied yet\n";
		d->close = true;
		return;
	}
	bm_router_route(l->router, req, d);
}

/* Each attempt's outcome feeds outlier detection under the current router's policies. */
static void outcome(void *arg, const char *cluster, const struct sockaddr_storage *ep,
		    enum bm_l7_outcome what, int status)
{
	struct bm_l7 *l = arg;
	int ej = bm_router_outcome(l->router, cluster, ep, what, status, bm_evloop_now(l->loop));

	if (ej < 0)
		bm_warn("l7: outlier detection: out of memory; %s not counted", cluster);
	if (l->on_outcome)
		l->on_outcome(l->outcome_arg, cluster, ep, ej > 0);
}

static int listen_at(const struct bm_ip *ip, uint16_t port, bool v6)
{
	struct sockaddr_storage ss;
	int one = 1, mark = BM_AGENT_MARK, fd, err;

	memset(&ss, 0, sizeof(ss));
	if (!v6) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, ip->a + 12, 4);
		s4->sin_port = htons(port);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, ip->a, 16);
		s6->sin6_port = htons(port);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
	if (v6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, v6 ? sizeof(struct sockaddr_in6) :
						  sizeof(struct sockaddr_in)) ||
	    listen(fd, 4096)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static void l7_hook(struct bm_evloop *loop, struct bm_ev_hook *h)
{
	struct bm_l7 *l = bm_container_of(h, struct bm_l7, hook);

	(void)loop;
	while (l->sniffs)
		sniff_close(l->sniffs);
}

int bm_l7_start(struct bm_l7 *l, struct bm_evloop *loop, const struct bm_dp *dp,
		const struct bm_l7_opts *o)
{
	static const struct bm_ip none;
	char ip[64];
	int err = 0;

	memset(l, 0, sizeof(*l));
	l->loop = loop;
	l->dp = dp;
	l->bypass = o->bypass;
	bm_conn_upstream_mark = BM_AGENT_MARK;
	if (l->bypass) {
		bm_conn_up_hooks = (struct bm_conn_up_hooks){ up_prepare, up_connected, l };
		for (int v6 = 0; v6 < 2; v6++) {
			l->src[v6].addr = v6 ? o->addr6 : o->addr4;
			l->src[v6].ok = src_usable(&l->src[v6].addr, &l->src[v6].mask);
			if (!l->src[v6].ok)
				continue;
			bm_ip_format(&l->src[v6].addr, ip, sizeof(ip));
			bm_info("l7: upstream connections to endpoints on %s's subnet join the same-node "
				"bypass", ip);
		}
	}
	l->px = bm_h1_proxy_new(loop, NULL, route, l);
	if (l->px && l->router)
		bm_router_set_load(l->router, bm_h1_proxy_load, l->px);
	l->h2b = l->px ? bm_h2_back_new(loop, NULL) : NULL;
	l->h2f = l->h2b ? bm_h2_front_new(loop, l->px, NULL) : NULL;
	if (!l->h2f) {
		bm_h2_back_free(l->h2b);
		bm_h1_proxy_free(l->px);
		l->h2b = NULL;
		l->px = NULL;
		return -ENOMEM;
	}
	bm_h1_proxy_set_h2(l->px, h2c_upgrade, h2_open, l);
	bm_h1_proxy_set_outcome(l->px, outcome, l);
	bm_ev_hook_add(loop, &l->hook, l7_hook);
	for (int v6 = 0; v6 < 2; v6++) {
		const struct bm_ip *a = v6 ? &o->addr6 : &o->addr4;
		int fd;

		if (!memcmp(a, &none, sizeof(none)))
			continue;
		bm_ip_format(a, ip, sizeof(ip));
		fd = listen_at(a, o->port, v6);
		if (fd < 0) {
			err = fd;
			bm_err("l7: listen on %s port %u: %s", ip, o->port, strerror(-err));
			break;
		}
		bm_ev_file_init(&l->lsn[l->n_lsn].ev, fd, lsn_event, l);
		l->lsn[l->n_lsn].v6 = v6;
		err = bm_ev_file_set(loop, &l->lsn[l->n_lsn].ev, BM_EV_READ);
		l->n_lsn++;
		if (!err)
			err = bm_dp_l7_listener_set(dp, v6, fd);
		if (err) {
			bm_err("l7: register the listener on %s with the kernel: %s", ip,
			       strerror(-err));
			break;
		}
		bm_info("l7: HTTP listener on %s port %u", ip, o->port);
	}
	if (err)
		bm_l7_stop(l);
	return err;
}

void bm_l7_set_router(struct bm_l7 *l, struct bm_router *r)
{
	bm_router_free(l->router);
	l->router = r;
	if (r && l->px)
		bm_router_set_load(r, bm_h1_proxy_load, l->px); /* LEAST_REQUEST */
}

void bm_l7_stop(struct bm_l7 *l)
{
	if (!l->loop)
		return;
	for (size_t i = 0; i < l->n_lsn; i++) {
		bm_ev_file_del(l->loop, &l->lsn[i].ev);
		close(l->lsn[i].ev.fd); /* the kernel drops it from bm_l7_lsn: L4 from now on */
	}
	l->n_lsn = 0;
	while (l->sniffs)
		sniff_close(l->sniffs);
	bm_ev_hook_del(l->loop, &l->hook);
	/* The front's streams are the engine's clients, and the back serves the engine's
	 * upstreams: front, engine, back, in that order. */
	bm_h2_front_free(l->h2f);
	if (l->px)
		bm_h1_proxy_free(l->px);
	bm_h2_back_free(l->h2b);
	l->h2f = NULL;
	l->h2b = NULL;
	l->px = NULL;
	bm_router_free(l->router);
	l->router = NULL;
	if (bm_conn_up_hooks.arg == l)
		bm_conn_up_hooks = (struct bm_conn_up_hooks){ 0 };
	free(l->remote);
	l->remote = NULL;
	l->n_remote = 0;
	l->loop = NULL;
}
