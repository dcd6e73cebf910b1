/* json.c - writes byte strings as JSON string literals for bm-echo's replies.
 * Valid UTF-8 passes through; other bytes above 0x7f become \u00XX (read as Latin-1). */
#include "echo.h"

#include <string.h>

/* Length of the valid UTF-8 sequence starting at p, or 0 if the bytes there are not one. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;		/* overlong */
	else if (c == 0xed)
		hi = 0x9f;		/* surrogates */
	else if (c == 0xf0)
		lo = 0x90;		/* overlong */
	else if (c == 0xf4)
		hi = 0x8f;		/* above U+10FFFF */
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/* Bytes the escaped form of one unit takes; *len is the unit's input length. */
static size_t escaped_len(const unsigned char *p, size_t n, size_t *len)
{
	unsigned char c = p[0];

	*len = utf8_len(p, n);
	if (*len > 1)
		return *len;
	*len = 1;
	if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' ||
	    c == '\t')
		return 2;
	if (c < 0x20 || c >= 0x7f)
		return 6;
	return 1;
}

/* Appends the escaped bytes of s, without quotes; lower folds ASCII letters to lowercase. */
int bm_json_chars(struct bm_buf *b, size_t max, const char *s, size_t n, bool lower)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t need = 0, len, i;
	char *o;
	int err;

	for (i = 0; i < n; i += len)
		need += escaped_len(p + i, n - i, &len);
	err = bm_buf_reserve(b, need, max);
	if (err)
		return err;
	o = b->data + b->len;
	for (i = 0; i < n; i += len) {
		unsigned char c = p[i];
		size_t out = escaped_len(p + i, n - i, &len);

		if (len > 1) {
			memcpy(o, p + i, len);
			o += len;
			continue;
		}
		if (out == 1) {
			*o++ = lower && c >= 'A' && c <= 'Z' ? (char)(c + 32) : (char)c;
			continue;
		}
		*o++ = '\\';
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		default:
			*o++ = 'u';
			*o++ = '0';
			*o++ = '0';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	b->len = (size_t)(o - b->data);
	return 0;
}

/* Appends s as a JSON string literal, quotes included. */
int bm_json_str(struct bm_buf *b, size_t max, const char *s, size_t n, bool lower)
{
	int err = bm_buf_append(b, "\"", 1, max);

	if (!err)
		err = bm_json_chars(b, max, s, n, lower);
	if (!err)
		err = bm_buf_append(b, "\"", 1, max);
	return err;
}
