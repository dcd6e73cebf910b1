/* The agent's event loop: epoll (level-triggered) for descriptors, a binary min-heap for
 * timers, deferred frees after each batch, and teardown hooks for bm_evloop_free. */
#include "evloop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define EV_BATCH 256
#define EV_MAX_WAIT_MS 60000 /* wake up at least this often, timers or not */

struct bm_evloop {
	int epfd;
	uint64_t now;
	uint64_t seq;
	struct bm_ev_timer **heap;
	size_t n_heap, cap_heap;
	struct bm_ev_defer *defer_head, **defer_tail;
	struct bm_ev_hook hooks; /* list head */
	volatile sig_atomic_t stop;
	struct epoll_event events[EV_BATCH];
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct bm_evloop *bm_evloop_new(void)
{
	struct bm_evloop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	l->now = mono_ms();
	l->defer_tail = &l->defer_head;
	l->hooks.next = l->hooks.prev = &l->hooks;
	return l;
}

static int run_deferred(struct bm_evloop *l)
{
	int n = 0;

	while (l->defer_head) {
		struct bm_ev_defer *d = l->defer_head;

		l->defer_head = d->next;
		if (!l->defer_head)
			l->defer_tail = &l->defer_head;
		d->next = NULL;
		d->queued = false;
		d->fn(d);
		n++;
	}
	return n;
}

void bm_evloop_free(struct bm_evloop *l)
{
	if (!l)
		return;
	while (l->hooks.next != &l->hooks) {
		struct bm_ev_hook *h = l->hooks.next;

		bm_ev_hook_del(l, h);
		h->fn(l, h);
	}
	run_deferred(l);
	free(l->heap);
	close(l->epfd);
	free(l);
}

void bm_evloop_stop(struct bm_evloop *l)
{
	l->stop = 1;
}

uint64_t bm_evloop_now(const struct bm_evloop *l)
{
	return l->now;
}

int bm_evloop_fd(const struct bm_evloop *l)
{
	return l->epfd;
}

/* ---- file events ---- */

void bm_ev_file_init(struct bm_ev_file *f, int fd, bm_ev_file_fn fn, void *data)
{
	f->fd = fd;
	f->mask = 0;
	f->added = false;
	f->fn = fn;
	f->data = data;
}

int bm_ev_file_set(struct bm_evloop *l, struct bm_ev_file *f, uint32_t mask)
{
	struct epoll_event ev = { .data.ptr = f };

	if (f->added && f->mask == mask)
		return 0;
	if (mask & BM_EV_READ)
		ev.events |= EPOLLIN;
	if (mask & BM_EV_WRITE)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(l->epfd, f->added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, f->fd, &ev) < 0)
		return -errno;
	f->added = true;
	f->mask = mask;
	return 0;
}

void bm_ev_file_del(struct bm_evloop *l, struct bm_ev_file *f)
{
	if (!f->added)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, f->fd, NULL);
	f->added = false;
	f->mask = 0;
}

/* ---- timers: a min-heap on (when, seq) ---- */

static bool timer_before(const struct bm_ev_timer *a, const struct bm_ev_timer *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_place(struct bm_evloop *l, size_t i, struct bm_ev_timer *t)
{
	l->heap[i] = t;
	t->slot = i;
}

static void heap_up(struct bm_evloop *l, size_t i)
{
	struct bm_ev_timer *t = l->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!timer_before(t, l->heap[parent]))
			break;
		heap_place(l, i, l->heap[parent]);
		i = parent;
	}
	heap_place(l, i, t);
}

static void heap_down(struct bm_evloop *l, size_t i)
{
	struct bm_ev_timer *t = l->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= l->n_heap)
			break;
		if (c + 1 < l->n_heap && timer_before(l->heap[c + 1], l->heap[c]))
			c++;
		if (!timer_before(l->heap[c], t))
			break;
		heap_place(l, i, l->heap[c]);
		i = c;
	}
	heap_place(l, i, t);
}

void bm_ev_timer_init(struct bm_ev_timer *t, bm_ev_timer_fn fn, void *data)
{
	t->when = 0;
	t->seq = 0;
	t->slot = SIZE_MAX;
	t->fn = fn;
	t->data = data;
}

void bm_ev_timer_cancel(struct bm_evloop *l, struct bm_ev_timer *t)
{
	size_t i = t->slot;
	struct bm_ev_timer *last;

	if (i == SIZE_MAX)
		return;
	t->slot = SIZE_MAX;
	last = l->heap[--l->n_heap];
	if (last == t)
		return;
	heap_place(l, i, last);
	if (i > 0 && timer_before(last, l->heap[(i - 1) / 2]))
		heap_up(l, i);
	else
		heap_down(l, i);
}

int bm_ev_timer_arm(struct bm_evloop *l, struct bm_ev_timer *t, uint64_t after_ms)
{
	bm_ev_timer_cancel(l, t);
	if (l->n_heap == l->cap_heap) {
		size_t cap = l->cap_heap ? l->cap_heap * 2 : 64;
		struct bm_ev_timer **h = realloc(l->heap, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		l->heap = h;
		l->cap_heap = cap;
	}
	t->when = l->now + after_ms;
	t->seq = ++l->seq;
	l->heap[l->n_heap] = t;
	t->slot = l->n_heap++;
	heap_up(l, t->slot);
	return 0;
}

/* Fires the timers due now that were armed before this pass began, so a callback that
 * re-arms itself for 0 ms runs again next batch rather than looping here. */
static int run_timers(struct bm_evloop *l)
{
	uint64_t last_seq = l->seq;
	int n = 0;

	while (l->n_heap) {
		struct bm_ev_timer *t = l->heap[0];

		if (t->when > l->now || t->seq > last_seq)
			break;
		bm_ev_timer_cancel(l, t);
		t->fn(l, t);
		n++;
	}
	return n;
}

/* ---- deferred frees and hooks ---- */

void bm_ev_defer(struct bm_evloop *l, struct bm_ev_defer *d, void (*fn)(struct bm_ev_defer *d))
{
	if (d->queued)
		return;
	d->queued = true;
	d->fn = fn;
	d->next = NULL;
	*l->defer_tail = d;
	l->defer_tail = &d->next;
}

void bm_ev_hook_add(struct bm_evloop *l, struct bm_ev_hook *h,
		    void (*fn)(struct bm_evloop *l, struct bm_ev_hook *h))
{
	h->fn = fn;
	h->next = l->hooks.next;
	h->prev = &l->hooks;
	l->hooks.next->prev = h;
	l->hooks.next = h;
}

void bm_ev_hook_del(struct bm_evloop *l, struct bm_ev_hook *h)
{
	(void)l;
	if (!h->next)
		return;
	h->prev->next = h->next;
	h->next->prev = h->prev;
	h->next = h->prev = NULL;
}

/* ---- running ---- */

static int wait_ms(const struct bm_evloop *l, int max_wait_ms)
{
	uint64_t until;

	if (max_wait_ms == 0 || l->defer_head)
		return 0;
	if (!l->n_heap)
		return max_wait_ms < 0 ? EV_MAX_WAIT_MS : max_wait_ms;
	until = l->heap[0]->when > l->now ? l->heap[0]->when - l->now : 0;
	if (max_wait_ms >= 0 && until > (uint64_t)max_wait_ms)
		until = (uint64_t)max_wait_ms;
	return until > EV_MAX_WAIT_MS ? EV_MAX_WAIT_MS : (int)until;
}

int bm_evloop_run_once(struct bm_evloop *l, int max_wait_ms)
{
	int n, i, ran = 0;

	n = epoll_wait(l->epfd, l->events, EV_BATCH, wait_ms(l, max_wait_ms));
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		n = 0;
	}
	l->now = mono_ms();
	for (i = 0; i < n; i++) {
		struct bm_ev_file *f = l->events[i].data.ptr;
		uint32_t e = l->events[i].events, ev = 0;

		/* A file deleted earlier in this batch: its owner may be closing. */
		if (!f->added)
			continue;
		if (e & EPOLLIN)
			ev |= BM_EV_READ;
		if (e & EPOLLOUT)
			ev |= BM_EV_WRITE;
		if (e & (EPOLLERR | EPOLLHUP))
			ev |= BM_EV_ERROR;
		f->fn(l, f, ev);
		ran++;
	}
	ran += run_timers(l);
	ran += run_deferred(l);
	return ran;
}

int bm_evloop_run(struct bm_evloop *l)
{
	l->stop = 0;
	while (!l->stop) {
		int rc = bm_evloop_run_once(l, -1);

		if (rc < 0)
			return rc;
	}
	return 0;
}
