/* Logging for the agent and tools: leveled lines on stderr, libbpf's output routed here. */
#ifndef BM_LOG_H
#define BM_LOG_H

enum bm_log_level { BM_LOG_ERROR = 0, BM_LOG_WARN, BM_LOG_INFO, BM_LOG_DEBUG };

extern enum bm_log_level bm_log_level;

void bm_log(enum bm_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Route libbpf's messages through bm_log (warnings and errors; debug at BM_LOG_DEBUG). */
void bm_log_libbpf(void);
int bm_log_parse_level(const char *s, enum bm_log_level *out);

#define bm_err(...) bm_log(BM_LOG_ERROR, __VA_ARGS__)
#define bm_warn(...) bm_log(BM_LOG_WARN, __VA_ARGS__)
#define bm_info(...) bm_log(BM_LOG_INFO, __VA_ARGS__)
#define bm_dbg(...) bm_log(BM_LOG_DEBUG, __VA_ARGS__)

#endif
