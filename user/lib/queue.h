/* Intrusive doubly linked queues: the owner holds head and tail, the element its prev and next
 * links under names of the caller's choosing, so one element can stand in several queues at
 * once (a waiter in its cluster's queue and its endpoint's). Arguments are evaluated more
 * than once: pass plain lvalues. */
#ifndef BM_QUEUE_H
#define BM_QUEUE_H

#include <stddef.h>

#define BM_Q_PUSH_TAIL(head, tail, x, prev, next)          \
	do {                                               \
		(x)->next = NULL;                          \
		(x)->prev = (tail);                        \
		if (tail)                                  \
			(tail)->next = (x);                \
		else                                       \
			(head) = (x);                      \
		(tail) = (x);                              \
	} while (0)

#define BM_Q_PUSH_HEAD(head, tail, x, prev, next)          \
	do {                                               \
		(x)->prev = NULL;                          \
		(x)->next = (head);                        \
		if (head)                                  \
			(head)->prev = (x);                \
		else                                       \
			(tail) = (x);                      \
		(head) = (x);                              \
	} while (0)

#define BM_Q_UNLINK(head, tail, x, prev, next)             \
	do {                                               \
		if ((x)->prev)                             \
			(x)->prev->next = (x)->next;       \
		else                                       \
			(head) = (x)->next;                \
		if ((x)->next)                             \
			(x)->next->prev = (x)->prev;       \
		else                                       \
			(tail) = (x)->prev;                \
		(x)->prev = (x)->next = NULL;              \
	} while (0)

#endif
