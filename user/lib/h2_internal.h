/* Internals shared by the HTTP/2 front and back (h2.h): moving nghttp2's frames between a
 * session and a bm_conn, and the header rules both directions of conversion follow. */
#ifndef BM_H2_INTERNAL_H
#define BM_H2_INTERNAL_H

#include <nghttp2/nghttp2.h>

#include "conn.h"
#include "h2.h"

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24
/* A conn's output may pass its high mark by one frame (nghttp2 hands out whole frames). */
#define H2_OUT_SLACK (16384 + 9 + 1024)

/* Defaults of struct bm_h2_opts filled in. */
void h2_opts_fill(struct bm_h2_opts *o, const struct bm_h2_opts *in);

/* Feeds what c has read to ng (nghttp2_session_mem_recv) and consumes it. 0, or -1 on a
 * fatal nghttp2 error (the session is done: close the connection). */
int h2_io_recv(nghttp2_session *ng, struct bm_conn *c);
/* Takes frames from ng (nghttp2_session_mem_send) into c->out while fewer than high bytes
 * are pending, then flushes. 0, or -1 on an nghttp2 error or a write failure. */
int h2_io_send(nghttp2_session *ng, struct bm_conn *c, size_t high);
/* Does ng want nothing more (neither to read nor to write)? The connection may close. */
bool h2_io_done(nghttp2_session *ng);

/* A field HTTP/2 forbids (RFC 9113 8.2.2) and HTTP/1.1 frames or hops by: connection,
 * keep-alive, proxy-connection, transfer-encoding, upgrade, http2-settings. `te` is not
 * here: it passes when its value is "trailers" (h2_te_ok). name: lowercase. */
bool h2_conn_specific(const char *name, size_t len);
bool h2_te_ok(const char *value, size_t len);

#endif
