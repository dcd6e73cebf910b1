/* parse.c - strict number and duration parsing for flags and per-request controls.
 * Inputs are spans (not NUL-terminated); anything but the exact grammar is rejected. */
#include "echo.h"

#include <errno.h>
#include <string.h>

/* Decimal digits only, 1..20 of them, value <= max. */
int bm_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!n || n > 20)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* "<digits>[ms|s|m]"; a bare number is in unit_ms. Result in ms, at most max_ms. */
int bm_parse_duration_ms(const char *s, size_t n, uint64_t unit_ms, uint64_t max_ms,
			 uint64_t *out)
{
	uint64_t v, mult = unit_ms;
	size_t digits = 0;
	int err;

	while (digits < n && s[digits] >= '0' && s[digits] <= '9')
		digits++;
	if (n - digits == 2 && !memcmp(s + digits, "ms", 2))
		mult = 1;
	else if (n - digits == 1 && s[digits] == 's')
		mult = 1000;
	else if (n - digits == 1 && s[digits] == 'm')
		mult = 60000;
	else if (n != digits)
		return -EINVAL;
	err = bm_parse_u64(s, digits, max_ms / mult, &v);
	if (err)
		return err;
	*out = v * mult;
	return 0;
}

/* base64url without padding (RFC 4648 section 5), as HTTP2-Settings carries it; at most max
 * bytes out. Trailing '=' padding is accepted, any other byte outside the alphabet is not. */
int bm_parse_base64url(const char *s, size_t n, uint8_t *out, size_t max, size_t *outlen)
{
	uint32_t acc = 0;
	size_t bits = 0, len = 0;

	while (n && s[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		uint32_t v;

		if (ch >= 'A' && ch <= 'Z')
			v = (uint32_t)(ch - 'A');
		else if (ch >= 'a' && ch <= 'z')
			v = (uint32_t)(ch - 'a' + 26);
		else if (ch >= '0' && ch <= '9')
			v = (uint32_t)(ch - '0' + 52);
		else if (ch == '-')
			v = 62;
		else if (ch == '_')
			v = 63;
		else
			return -EINVAL;
		acc = (acc << 6) | v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (len == max)
				return -ERANGE;
			out[len++] = (uint8_t)(acc >> bits);
		}
	}
	*outlen = len;
	return 0;
}
