/* echo.h - bm-echo's shared types: the configuration, the server, TCP connections and the
 * protocol hooks (sniff, raw, http) a connection switches between once it knows its peer. */
#ifndef BM_ECHO_H
#define BM_ECHO_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"
#include "loop.h"

#define BM_ECHO_MAX_PORTS	64
#define BM_ECHO_MAX_LABELS	64
#define BM_ECHO_IN_BUF		(64 * 1024)	/* per-connection input (and raw echo) buffer */
#define BM_ECHO_OUT_MAX		(1024 * 1024)	/* cap of a connection's output buffer */
#define BM_ECHO_IDLE_MS		60000		/* default --idle-timeout */
#define BM_ECHO_MAX_CONNS	4096		/* default --max-conns */
#define BM_ECHO_IDENT_MAX	4096		/* cap of one identity line */
/* "[" v6 "%" ifname "]:" port */
#define BM_ECHO_ADDRSTRLEN	(INET6_ADDRSTRLEN + IF_NAMESIZE + 10)

struct bm_label {
	const char *key;	/* points into argv, not NUL-terminated at key_len */
	size_t key_len;
	const char *value;
};

struct bm_echo_cfg {
	const char *pod, *ns, *node, *version;
	struct bm_label labels[BM_ECHO_MAX_LABELS];
	size_t nlabels;
	uint16_t tcp[BM_ECHO_MAX_PORTS];
	size_t ntcp;
	uint16_t udp[BM_ECHO_MAX_PORTS];
	size_t nudp;
	const char *ready_file;
	bool quiet;
	uint64_t idle_ms;
	unsigned max_conns;
};

struct bm_listener;
struct bm_udp;
struct bm_conn;
struct bm_http;
struct bm_h2;

struct bm_echo {
	struct bm_loop loop;
	struct bm_echo_cfg cfg;
	char *ident_json;		/* "pod":..,"labels":{..} without braces, built once */
	size_t ident_json_len;
	struct bm_listener *tcp;	/* cfg.ntcp of them */
	struct bm_udp *udp;		/* cfg.nudp of them */
	char *dgram;			/* receive buffer shared by the UDP sockets */
	struct bm_conn *conns;		/* live TCP connections */
	unsigned nconns;
	struct bm_buf scratch;		/* response body under construction */
	struct bm_buf logline;		/* access log line under construction */
};

/* What a connection does with its events; a connection starts in sniff and moves to raw,
 * http or h2 once the first bytes tell which (and from http to h2 on an h2c upgrade). */
struct bm_proto {
	const char *name;
	void (*on_event)(struct bm_conn *c, uint32_t events);
	void (*on_timer)(struct bm_conn *c);	/* c->timer fired; may be NULL */
	void (*on_close)(struct bm_conn *c);	/* cancel own timers; may be NULL */
	void (*fini)(struct bm_conn *c);	/* free own state; may be NULL */
};

struct bm_conn {
	struct bm_watch w;
	struct bm_echo *echo;
	struct bm_conn *prev, *next;
	const struct bm_proto *proto;
	struct bm_buf in;		/* bytes read, not consumed yet (raw: not echoed yet) */
	struct bm_buf out;		/* bytes to write */
	struct bm_timer timer;		/* owned by the current protocol */
	uint64_t last_io;		/* loop time of the last byte read or written */
	bool rd_eof;			/* the peer sent FIN */
	struct bm_http *http;		/* HTTP/1.x state (http.c) */
	struct bm_h2 *h2;		/* HTTP/2 state (h2.c) */
	struct bm_deferred dead;
	char local[BM_ECHO_ADDRSTRLEN];
	char peer[BM_ECHO_ADDRSTRLEN];
};

/* Results of connection I/O. */
enum bm_io {
	BM_IO_OK,	/* progress: bytes read, or everything written */
	BM_IO_AGAIN,	/* would block (or no buffer space); wait for the next event */
	BM_IO_EOF,	/* the peer sent FIN */
	BM_IO_ERROR,	/* reset or other failure; close the connection */
};

/* conn.c */
void bm_conn_accept(struct bm_echo *e, int fd, const struct sockaddr_storage *peer);
enum bm_io bm_conn_read(struct bm_conn *c);
enum bm_io bm_conn_write(struct bm_conn *c, struct bm_buf *b);
int bm_conn_want(struct bm_conn *c, bool rd, bool wr);
void bm_conn_close(struct bm_conn *c);
void bm_conn_close_all(struct bm_echo *e);

static inline bool bm_conn_closed(const struct bm_conn *c)
{
	return c->w.fd < 0;
}

/* Room to read into c->in: unallocated, tail space, or space a compaction would free. */
static inline bool bm_conn_can_read(const struct bm_conn *c)
{
	return !c->rd_eof && (!c->in.cap || bm_buf_pending(&c->in) < c->in.cap);
}

/* sniff.c, raw.c, http.c, h2.c */
enum bm_sniff { BM_SNIFF_MORE, BM_SNIFF_HTTP, BM_SNIFF_H2, BM_SNIFF_RAW };
enum bm_sniff bm_sniff(const char *p, size_t n);
void bm_sniff_start(struct bm_conn *c);
void bm_raw_start(struct bm_conn *c);
void bm_http_start(struct bm_conn *c);
void bm_h2_start(struct bm_conn *c);

/* listen.c */
int bm_bind_any(int type, uint16_t port);
int bm_listen_open(struct bm_echo *e);
void bm_listen_close(struct bm_echo *e);

/* udp.c */
int bm_udp_open(struct bm_echo *e);
void bm_udp_close(struct bm_echo *e);

/* addr.c */
void bm_addr_format(const struct sockaddr *sa, char *out, size_t n);
int bm_ident_line(struct bm_echo *e, struct bm_buf *b, const char *local, const char *peer);
int bm_ident_json_build(struct bm_echo *e);

/* json.c */
int bm_json_chars(struct bm_buf *b, size_t max, const char *s, size_t n, bool lower);
int bm_json_str(struct bm_buf *b, size_t max, const char *s, size_t n, bool lower);

/* parse.c */
int bm_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out);
int bm_parse_duration_ms(const char *s, size_t n, uint64_t unit_ms, uint64_t max_ms,
			 uint64_t *out);
int bm_parse_base64url(const char *s, size_t n, uint8_t *out, size_t max, size_t *outlen);

/* cli.c */
int bm_cli_parse(int argc, char **argv, struct bm_echo_cfg *cfg);

#endif
