/* loop.c - the epoll loop behind bm-echo (redis ae in spirit): level-triggered watches,
 * a binary min-heap of timers, and objects freed only after the batch that closed them. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define BM_LOOP_BATCH 256
#define BM_LOOP_MAX_WAIT_MS 60000

uint64_t bm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int bm_loop_init(struct bm_loop *l, volatile sig_atomic_t *stop, const sigset_t *waitmask)
{
	memset(l, 0, sizeof(*l));
	l->stop = stop;
	l->waitmask = *waitmask;
	l->now = bm_now_ms();
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	return l->epfd < 0 ? -errno : 0;
}

/* Frees what the loop owns; owners of watches and timers must be gone already. */
void bm_loop_fini(struct bm_loop *l)
{
	struct bm_deferred *d;

	while ((d = l->dead)) {
		l->dead = d->next;
		d->fn(d);
	}
	free(l->heap);
	l->heap = NULL;
	l->nheap = l->capheap = 0;
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
}

void bm_watch_init(struct bm_watch *w, int fd, void (*fn)(struct bm_watch *w, uint32_t events))
{
	w->fd = fd;
	w->events = 0;
	w->added = false;
	w->fn = fn;
}

/* Sets the interest of w to events, adding it to epoll on first use. */
int bm_loop_watch(struct bm_loop *l, struct bm_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (w->added && w->events == events)
		return 0;
	if (epoll_ctl(l->epfd, w->added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, w->fd, &ev) < 0)
		return -errno;
	w->added = true;
	w->events = events;
	return 0;
}

void bm_loop_close(struct bm_loop *l, struct bm_watch *w)
{
	if (w->fd < 0)
		return;
	if (w->added)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	close(w->fd);
	w->fd = -1;
	w->added = false;
}

void bm_timer_init(struct bm_timer *t, void (*fn)(struct bm_timer *t))
{
	t->when = 0;
	t->slot = SIZE_MAX;
	t->fn = fn;
}

static void heap_set(struct bm_loop *l, size_t i, struct bm_timer *t)
{
	l->heap[i] = t;
	t->slot = i;
}

static void heap_up(struct bm_loop *l, size_t i)
{
	struct bm_timer *t = l->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (l->heap[parent]->when <= t->when)
			break;
		heap_set(l, i, l->heap[parent]);
		i = parent;
	}
	heap_set(l, i, t);
}

static void heap_down(struct bm_loop *l, size_t i)
{
	struct bm_timer *t = l->heap[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= l->nheap)
			break;
		if (child + 1 < l->nheap && l->heap[child + 1]->when < l->heap[child]->when)
			child++;
		if (t->when <= l->heap[child]->when)
			break;
		heap_set(l, i, l->heap[child]);
		i = child;
	}
	heap_set(l, i, t);
}

/* Arms (or re-arms) t to fire after_ms from the loop's current time. */
int bm_timer_arm(struct bm_loop *l, struct bm_timer *t, uint64_t after_ms)
{
	if (bm_timer_armed(t))
		bm_timer_cancel(l, t);
	if (l->nheap == l->capheap) {
		size_t cap = l->capheap ? l->capheap * 2 : 64;
		struct bm_timer **heap = realloc(l->heap, cap * sizeof(*heap));

		if (!heap)
			return -ENOMEM;
		l->heap = heap;
		l->capheap = cap;
	}
	/* now is whole milliseconds, truncated: one more, so that a timer never fires before
	 * after_ms have really passed (a ?delay=500ms answer is never 499.x ms late). */
	t->when = l->now + after_ms + 1;
	heap_set(l, l->nheap++, t);
	heap_up(l, t->slot);
	return 0;
}

void bm_timer_cancel(struct bm_loop *l, struct bm_timer *t)
{
	size_t i = t->slot;
	struct bm_timer *last;

	if (i == SIZE_MAX)
		return;
	t->slot = SIZE_MAX;
	last = l->heap[--l->nheap];
	if (i == l->nheap)
		return;
	heap_set(l, i, last);
	heap_down(l, i);
	heap_up(l, last->slot);
}

void bm_loop_defer(struct bm_loop *l, struct bm_deferred *d, void (*fn)(struct bm_deferred *d))
{
	d->fn = fn;
	d->next = l->dead;
	l->dead = d;
}

static int next_timeout(const struct bm_loop *l)
{
	uint64_t now;

	if (!l->nheap)
		return BM_LOOP_MAX_WAIT_MS;
	now = bm_now_ms();
	if (l->heap[0]->when <= now)
		return 0;
	if (l->heap[0]->when - now > BM_LOOP_MAX_WAIT_MS)
		return BM_LOOP_MAX_WAIT_MS;
	return (int)(l->heap[0]->when - now);
}

static void run_timers(struct bm_loop *l)
{
	l->now = bm_now_ms();
	while (l->nheap && l->heap[0]->when <= l->now) {
		struct bm_timer *t = l->heap[0];

		bm_timer_cancel(l, t);
		t->fn(t);
	}
}

/* Runs until *stop is set by a signal; returns 0, or -errno if epoll itself fails. */
int bm_loop_run(struct bm_loop *l)
{
	struct epoll_event evs[BM_LOOP_BATCH];

	while (!*l->stop) {
		int n = epoll_pwait(l->epfd, evs, BM_LOOP_BATCH, next_timeout(l), &l->waitmask);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		l->now = bm_now_ms();
		for (int i = 0; i < n; i++) {
			struct bm_watch *w = evs[i].data.ptr;

			if (w->fd >= 0)
				w->fn(w, evs[i].events);
		}
		run_timers(l);
		while (l->dead) {
			struct bm_deferred *d = l->dead;

			l->dead = d->next;
			d->fn(d);
		}
	}
	return 0;
}
