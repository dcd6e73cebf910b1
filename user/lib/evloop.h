/* The agent's event loop (redis ae size): level-triggered epoll file events, a min-heap of
 * one-shot millisecond timers, frees deferred to the end of a batch, hooks run at teardown. */
#ifndef BM_EVLOOP_H
#define BM_EVLOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BM_EV_READ 0x1u
#define BM_EV_WRITE 0x2u
#define BM_EV_ERROR 0x4u /* EPOLLERR/EPOLLHUP: reported whatever the interest */

struct bm_evloop;
struct bm_ev_file;
struct bm_ev_timer;

typedef void (*bm_ev_file_fn)(struct bm_evloop *l, struct bm_ev_file *f, uint32_t events);
typedef void (*bm_ev_timer_fn)(struct bm_evloop *l, struct bm_ev_timer *t);

/* A watched descriptor, embedded in its owner. After bm_ev_file_del (fd set to -1 by the
 * owner or not), events already fetched for it in the current batch are dropped. */
struct bm_ev_file {
	int fd;
	uint32_t mask;          /* BM_EV_READ | BM_EV_WRITE registered */
	bool added;
	bm_ev_file_fn fn;
	void *data;
};

/* A one-shot timer, embedded in its owner; re-arm from the callback to repeat. The owner
 * cancels it before it is freed. */
struct bm_ev_timer {
	uint64_t when;          /* loop time (ms) it fires at */
	uint64_t seq;           /* arming order: ties fire first-armed first */
	size_t slot;            /* heap index, SIZE_MAX when not armed */
	bm_ev_timer_fn fn;
	void *data;
};

/* An object closed inside a callback: fn runs after the current batch of events and
 * timers, when no callback can still hold a pointer to it. */
struct bm_ev_defer {
	struct bm_ev_defer *next;
	void (*fn)(struct bm_ev_defer *d);
	bool queued;
};

/* A module's teardown: fn runs from bm_evloop_free, before deferred frees, for owners that
 * live on the loop without a handle of their own (TCP relays). */
struct bm_ev_hook {
	struct bm_ev_hook *prev, *next;
	void (*fn)(struct bm_evloop *l, struct bm_ev_hook *h);
};

struct bm_evloop *bm_evloop_new(void);
/* Runs the teardown hooks, then the deferred frees, then frees the loop. Owners of file
 * events and timers must be gone (or hooked) by then. */
void bm_evloop_free(struct bm_evloop *l);

/* Runs until bm_evloop_stop; returns 0, or -errno when epoll fails. */
int bm_evloop_run(struct bm_evloop *l);
/* One batch: waits up to max_wait_ms (-1: until the next timer or event, 0: poll), runs the
 * file events, the due timers and the deferred frees. Returns the number of callbacks run,
 * or -errno. */
int bm_evloop_run_once(struct bm_evloop *l, int max_wait_ms);
/* Makes bm_evloop_run return after the current batch; safe from a signal handler. */
void bm_evloop_stop(struct bm_evloop *l);
/* Monotonic milliseconds as of the last wakeup (cheap; what timers are measured against). */
uint64_t bm_evloop_now(const struct bm_evloop *l);
/* The epoll descriptor, to nest this loop in another one. */
int bm_evloop_fd(const struct bm_evloop *l);

void bm_ev_file_init(struct bm_ev_file *f, int fd, bm_ev_file_fn fn, void *data);
/* Sets the interest to mask (0 keeps the fd registered for errors only). 0 or -errno. */
int bm_ev_file_set(struct bm_evloop *l, struct bm_ev_file *f, uint32_t mask);
/* Unregisters f (does not close the fd); pending events of this batch are dropped. */
void bm_ev_file_del(struct bm_evloop *l, struct bm_ev_file *f);

void bm_ev_timer_init(struct bm_ev_timer *t, bm_ev_timer_fn fn, void *data);
/* Arms (or re-arms) t to fire after_ms from now. 0 or -ENOMEM. */
int bm_ev_timer_arm(struct bm_evloop *l, struct bm_ev_timer *t, uint64_t after_ms);
void bm_ev_timer_cancel(struct bm_evloop *l, struct bm_ev_timer *t);

static inline bool bm_ev_timer_armed(const struct bm_ev_timer *t)
{
	return t->slot != SIZE_MAX;
}

/* Queues d; a second call before it ran is ignored. */
void bm_ev_defer(struct bm_evloop *l, struct bm_ev_defer *d, void (*fn)(struct bm_ev_defer *d));

void bm_ev_hook_add(struct bm_evloop *l, struct bm_ev_hook *h,
		    void (*fn)(struct bm_evloop *l, struct bm_ev_hook *h));
void bm_ev_hook_del(struct bm_evloop *l, struct bm_ev_hook *h);

#define bm_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
