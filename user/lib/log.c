/* Logging for the agent and tools: leveled lines on stderr, libbpf's output routed here.
 * Each line: level, then the message; the caller's text says what failed, on what, and why. */
#include "log.h"

#include <bpf/libbpf.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum bm_log_level bm_log_level = BM_LOG_INFO;

static const char *const names[] = { "error", "warn", "info", "debug" };

static void vlog(enum bm_log_level lvl, const char *fmt, va_list ap)
{
	struct timespec ts;
	char buf[1024];
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	fprintf(stderr, "%lld.%03ld %s: %s\n", (long long)ts.tv_sec, ts.tv_nsec / 1000000,
		names[lvl], buf);
}

void bm_log(enum bm_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl > bm_log_level)
		return;
	va_start(ap, fmt);
	vlog(lvl, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum bm_log_level lvl = level == LIBBPF_WARN ? BM_LOG_WARN :
				level == LIBBPF_INFO ? BM_LOG_DEBUG : BM_LOG_DEBUG;

	if (lvl > bm_log_level)
		return 0;
	vlog(lvl, fmt, ap);
	return 0;
}

void bm_log_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}

int bm_log_parse_level(const char *s, enum bm_log_level *out)
{
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i])) {
			*out = (enum bm_log_level)i;
			return 0;
		}
	return -1;
}
