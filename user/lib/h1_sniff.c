/* Sniffing the first bytes of an intercepted connection: does it open with an HTTP/1.x
 * request line (method token, space, target, " HTTP/1.")? */
#include <string.h>

#include "h1.h"

#define SNIFF_METHOD_MAX 32
#define SNIFF_TARGET_MAX 8192

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int bm_h1_sniff(const void *buf, size_t len)
{
	static const char ver[] = " HTTP/1.";
	const unsigned char *p = buf;
	size_t i = 0, t, v;

	while (i < len && is_tchar(p[i])) {
		if (++i > SNIFF_METHOD_MAX)
			return -1;
	}
	if (i == len)
		return 0;
	if (i == 0 || p[i] != ' ')
		return -1;
	t = ++i;
	while (i < len && p[i] > ' ' && p[i] < 0x7f) {
		if (i - t >= SNIFF_TARGET_MAX)
			return -1;
		i++;
	}
	if (i == len)
		return 0;
	if (i == t)
		return -1;
	for (v = 0; v < sizeof(ver) - 1; v++, i++) {
		if (i == len)
			return 0;
		if (p[i] != (unsigned char)ver[v])
			return -1;
	}
	return 1;
}

bool bm_h1_looks_like_http(const void *buf, size_t len)
{
	return bm_h1_sniff(buf, len) == 1;
}
