/* loop.h - bm-echo's event loop: epoll readiness callbacks, a timer heap and deferred frees.
 * One thread; a callback may close its owner and hand it to bm_loop_defer to be freed later. */
#ifndef BM_ECHO_LOOP_H
#define BM_ECHO_LOOP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define bm_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct bm_loop;

/* A file descriptor the loop watches. fd is -1 once closed: events still queued for it are
 * dropped, so an owner closed earlier in the same batch is never called back. */
struct bm_watch {
	int fd;
	uint32_t events;	/* interest registered with epoll */
	bool added;
	void (*fn)(struct bm_watch *w, uint32_t events);
};

/* A one-shot timer, embedded in its owner; re-arm it from its callback to repeat. */
struct bm_timer {
	uint64_t when;		/* monotonic ms */
	size_t slot;		/* index in the heap, SIZE_MAX when not armed */
	void (*fn)(struct bm_timer *t);
};

/* An owner closed inside a callback, freed once the current batch of events is done. */
struct bm_deferred {
	struct bm_deferred *next;
	void (*fn)(struct bm_deferred *d);
};

struct bm_loop {
	int epfd;
	uint64_t now;			/* monotonic ms, refreshed after each wait */
	struct bm_timer **heap;
	size_t nheap, capheap;
	struct bm_deferred *dead;
	volatile sig_atomic_t *stop;	/* set by the signal handler */
	sigset_t waitmask;		/* signal mask while waiting: stop signals unblocked */
};

uint64_t bm_now_ms(void);

int bm_loop_init(struct bm_loop *l, volatile sig_atomic_t *stop, const sigset_t *waitmask);
void bm_loop_fini(struct bm_loop *l);
int bm_loop_run(struct bm_loop *l);

void bm_watch_init(struct bm_watch *w, int fd, void (*fn)(struct bm_watch *w, uint32_t events));
int bm_loop_watch(struct bm_loop *l, struct bm_watch *w, uint32_t events);
void bm_loop_close(struct bm_loop *l, struct bm_watch *w);

void bm_timer_init(struct bm_timer *t, void (*fn)(struct bm_timer *t));
int bm_timer_arm(struct bm_loop *l, struct bm_timer *t, uint64_t after_ms);
void bm_timer_cancel(struct bm_loop *l, struct bm_timer *t);

static inline bool bm_timer_armed(const struct bm_timer *t)
{
	return t->slot != SIZE_MAX;
}

void bm_loop_defer(struct bm_loop *l, struct bm_deferred *d, void (*fn)(struct bm_deferred *d));

#endif
