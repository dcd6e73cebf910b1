/* Typed field readers for the config loader: strict scalars (ints, ports, booleans, strings,
 * enums, IPs), labels, field paths and the per-resource diagnostics built on them. */
#include "config_internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MAX 2048

const char *const bm_cfg_top_keys[] = { "apiVersion", "kind", "metadata", "spec", "status", NULL };

/* ---- field path ---- */

/* Appends seg[0..n); a path that does not fit ends in "..." and stays full. This runs for
 * every field of every file, hence memcpy rather than a formatted print. */
static size_t path_append(struct bm_px *p, const char *seg, size_t n)
{
	size_t mark = p->plen, room = sizeof(p->path) - p->plen;

	if (room <= 1)
		return mark;
	if (n >= room) {
		memcpy(p->path + sizeof(p->path) - 4, "...", 4);
		p->plen = sizeof(p->path) - 1;
	} else {
		memcpy(p->path + p->plen, seg, n);
		p->plen += n;
		p->path[p->plen] = '\0';
	}
	return mark;
}

size_t bm_px_push(struct bm_px *p, const char *key)
{
	char seg[72];
	size_t k = strnlen(key, 64), n = 0;

	if (p->plen)
		seg[n++] = '.';
	memcpy(seg + n, key, k);
	return path_append(p, seg, n + k);
}

size_t bm_px_push_idx(struct bm_px *p, size_t i)
{
	char seg[32];
	int n = snprintf(seg, sizeof(seg), "[%zu]", i);

	return path_append(p, seg, n > 0 ? (size_t)n : 0);
}

void bm_px_pop(struct bm_px *p, size_t mark)
{
	if (mark < sizeof(p->path)) {
		p->plen = mark;
		p->path[mark] = '\0';
	}
}

/* ---- messages ---- */

static int subject(const struct bm_px *p, char *buf, size_t len)
{
	if (p->kind && p->name && p->ns && p->ns[0])
		return snprintf(buf, len, "%s %s/%s: ", p->kind, p->ns, p->name);
	if (p->kind && p->name)
		return snprintf(buf, len, "%s %s: ", p->kind, p->name);
	if (p->kind)
		return snprintf(buf, len, "%s: ", p->kind);
	buf[0] = '\0';
	return 0;
}

static void px_vdiag(struct bm_px *p, enum bm_diag_level lvl, int line, const char *fmt,
		     va_list ap)
{
	char msg[MSG_MAX], subj[256], what[512];

	subject(p, subj, sizeof(subj));
	vsnprintf(what, sizeof(what), fmt, ap);
	snprintf(msg, sizeof(msg), "%s: %s:%d: %s%s%s%s", lvl == BM_DIAG_ERROR ? "error" : "warning",
		 p->file, line, subj, p->path, p->plen ? ": " : "", what);
	if (lvl == BM_DIAG_ERROR)
		p->errors++;
	bm_cfg_diag_raw(p->c, lvl, p->file, line, msg);
}

void bm_px_err(struct bm_px *p, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	px_vdiag(p, BM_DIAG_ERROR, line, fmt, ap);
	va_end(ap);
}

void bm_px_unsup(struct bm_px *p, int line, const char *suffix_fmt, ...)
{
	char msg[MSG_MAX], suffix[256] = "";
	va_list ap;

	if (suffix_fmt) {
		va_start(ap, suffix_fmt);
		vsnprintf(suffix, sizeof(suffix), suffix_fmt, ap);
		va_end(ap);
	}
	snprintf(msg, sizeof(msg), "unsupported: %s/%s%s at %s:%d", p->kind, p->path, suffix,
		 p->file, line);
	bm_cfg_diag_raw(p->c, BM_DIAG_UNSUPPORTED, p->file, line, msg);
}

void bm_px_unsup_why(struct bm_px *p, int line, const char *why)
{
	char msg[MSG_MAX];

	snprintf(msg, sizeof(msg), "unsupported: %s/%s at %s:%d (%s)", p->kind, p->path, p->file,
		 line, why);
	bm_cfg_diag_raw(p->c, BM_DIAG_UNSUPPORTED, p->file, line, msg);
}

void bm_px_ferr(struct bm_px *p, const struct bm_ynode *map, const char *key, const char *fmt, ...)
{
	const struct bm_ynode *v = bm_y_get(map, key);
	size_t m = bm_px_push(p, key);
	va_list ap;

	va_start(ap, fmt);
	px_vdiag(p, BM_DIAG_ERROR, v && !bm_y_is_null(v) ? v->line : bm_px_key_line(map, key), fmt, ap);
	va_end(ap);
	bm_px_pop(p, m);
}

void bm_px_missing(struct bm_px *p, int line, const char *key)
{
	size_t m = bm_px_push(p, key);

	bm_px_err(p, line, "required");
	bm_px_pop(p, m);
}

void bm_px_oom(struct bm_px *p, int line)
{
	bm_px_err(p, line, "out of memory");
}

/* ---- scalars as YAML 1.1 (what kubectl's YAML-to-JSON step sees) resolves them ---- */

enum plain { PL_STR, PL_NULL, PL_BOOL, PL_INT, PL_FLOAT };

bool bm_cfg_one_of(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (!strcmp(s, *set))
			return true;
	return false;
}

static bool all_in(const char *s, const char *chars)
{
	bool digit = false;

	for (; *s; s++) {
		if (!strchr(chars, *s))
			return false;
		digit |= *s != '_';
	}
	return digit;
}

static bool is_float(const char *s)
{
	static const char *const special[] = { ".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN", NULL };
	size_t before = 0, after = 0;

	if (*s == '+' || *s == '-')
		s++;
	if (bm_cfg_one_of(s, special))
		return true;
	for (; *s >= '0' && *s <= '9'; s++)
		before++;
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++)
			after++;
	if (!before && !after)
		return false;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!(*s >= '0' && *s <= '9'))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

static enum plain classify(const struct bm_ynode *v)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const bools[] = { "y",	"Y",	 "yes",	 "Yes",	  "YES",   "n",
					     "N",	"no",	 "No",	 "NO",	  "true",  "True",
					     "TRUE",	"false", "False", "FALSE", "on",    "On",
					     "ON",	"off",	 "Off",	 "OFF",	  NULL };
	const char *s = v->str;

	if (v->quoted)
		return PL_STR;
	/* Every null and boolean word is at most 5 bytes and starts with one of these: most
	 * scalars skip the word lists (this runs for every scalar of every file). */
	if (v->len <= 5 && (!s[0] || strchr("~nNyYtTfFoO", s[0]))) {
		if (bm_cfg_one_of(s, nulls))
			return PL_NULL;
		if (bm_cfg_one_of(s, bools))
			return PL_BOOL;
	}
	const char *d = (*s == '+' || *s == '-') ? s + 1 : s;

	if ((!strncmp(d, "0x", 2) && all_in(d + 2, "0123456789abcdefABCDEF_")) ||
	    (!strncmp(d, "0b", 2) && all_in(d + 2, "01_")) ||
	    (!strncmp(d, "0o", 2) && all_in(d + 2, "01234567_")) || all_in(d, "0123456789_"))
		return PL_INT;
	return is_float(s) ? PL_FLOAT : PL_STR;
}

/* "a map", "the string \"80\"", "the number 1.5": for type errors. */
static const char *describe(const struct bm_ynode *v, char *buf, size_t len)
{
	if (v->type == BM_Y_MAP)
		return "a map";
	if (v->type == BM_Y_SEQ)
		return "a list";
	switch (classify(v)) {
	case PL_NULL:
		return "null";
	case PL_BOOL:
		snprintf(buf, len, "the boolean %s", v->str);
		break;
	case PL_INT:
	case PL_FLOAT:
		snprintf(buf, len, "the number %.40s", v->str);
		break;
	default:
		snprintf(buf, len, "the %sstring \"%.60s%s\"", v->quoted ? "quoted " : "", v->str,
			 v->len > 60 ? "..." : "");
	}
	return buf;
}

static int type_err(struct bm_px *p, const struct bm_ynode *v, const char *want)
{
	char d[128];

	bm_px_err(p, v->line, "expected %s, got %s", want, describe(v, d, sizeof(d)));
	return -1;
}

int bm_px_map(struct bm_px *p, const struct bm_ynode *v)
{
	if (!v)
		return 0;
	return v->type == BM_Y_MAP ? 1 : type_err(p, v, "a map");
}

int bm_px_seq(struct bm_px *p, const struct bm_ynode *v)
{
	if (!v)
		return 0;
	return v->type == BM_Y_SEQ ? 1 : type_err(p, v, "a list");
}

int bm_px_str(struct bm_px *p, const struct bm_ynode *v, const char **out)
{
	if (!v)
		return 0;
	enum plain k = v->type == BM_Y_SCALAR ? classify(v) : PL_NULL;

	if (v->type != BM_Y_SCALAR || k == PL_NULL)
		return type_err(p, v, "a string");
	if (k != PL_STR) {
		char d[128];

		bm_px_err(p, v->line, "expected a string, got %s (quote it)",
			  describe(v, d, sizeof(d)));
		return -1;
	}
	*out = v->str;
	return 1;
}

int bm_px_int(struct bm_px *p, const struct bm_ynode *v, long long lo, long long hi,
	      long long *out)
{
	const char *s, *d;
	long long x = 0;

	if (!v)
		return 0;
	if (v->type != BM_Y_SCALAR || classify(v) != PL_INT)
		return type_err(p, v, "an integer");
	s = v->str;
	d = (*s == '+' || *s == '-') ? s + 1 : s;
	if (!all_in(d, "0123456789") || (d[0] == '0' && d[1])) {
		bm_px_err(p, v->line, "expected a decimal integer, got %.40s", s);
		return -1;
	}
	for (; *d; d++) {
		if (x > (LLONG_MAX - (*d - '0')) / 10) {
			x = LLONG_MAX;
			break;
		}
		x = x * 10 + (*d - '0');
	}
	if (*s == '-')
		x = -x;
	if (x < lo || x > hi) {
		bm_px_err(p, v->line, "%.40s is out of range %lld..%lld", s, lo, hi);
		return -1;
	}
	*out = x;
	return 1;
}

int bm_px_port(struct bm_px *p, const struct bm_ynode *v, uint16_t *out)
{
	long long x;
	int r = bm_px_int(p, v, 1, 65535, &x);

	if (r == 1)
		*out = (uint16_t)x;
	return r;
}

int bm_px_bool(struct bm_px *p, const struct bm_ynode *v, bool *out)
{
	static const char *const t[] = { "true", "True", "TRUE", NULL };
	static const char *const f[] = { "false", "False", "FALSE", NULL };
	bool plain = v && v->type == BM_Y_SCALAR && !v->quoted;

	if (!v)
		return 0;
	if (plain && (bm_cfg_one_of(v->str, t) || bm_cfg_one_of(v->str, f))) {
		*out = bm_cfg_one_of(v->str, t);
		return 1;
	}
	if (plain && classify(v) == PL_BOOL) { /* YAML 1.1 yes/no/on/off */
		bm_px_err(p, v->line, "expected true or false, got %s", v->str);
		return -1;
	}
	return type_err(p, v, "true or false");
}

int bm_px_enum(struct bm_px *p, const struct bm_ynode *v, const char *const *names, int *out)
{
	char list[256];
	const char *s;
	size_t used = 0;
	int r = bm_px_str(p, v, &s);

	if (r != 1)
		return r;
	for (int i = 0; names[i]; i++)
		if (!strcmp(s, names[i])) {
			*out = i;
			return 1;
		}
	list[0] = '\0';
	for (int i = 0; names[i] && used < sizeof(list); i++) {
		int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", names[i]);

		if (w < 0)
			break;
		used += (size_t)w;
	}
	bm_px_err(p, v->line, "\"%.60s\" is not one of %s", s, list);
	return -1;
}

int bm_px_ip(struct bm_px *p, const struct bm_ynode *v, struct bm_ip *out)
{
	const char *s;
	int r = bm_px_str(p, v, &s);

	if (r != 1)
		return r;
	if (bm_ip_parse(s, out)) {
		bm_px_err(p, v->line, "\"%.60s\" is not an IP address", s);
		return -1;
	}
	return 1;
}

int bm_px_proto(struct bm_px *p, const struct bm_ynode *v, enum bm_l4proto *out)
{
	static const char *const names[] = { "TCP", "UDP", "SCTP", NULL };
	static const enum bm_l4proto val[] = { BM_PROTO_TCP, BM_PROTO_UDP, BM_PROTO_SCTP };
	int i, r = bm_px_enum(p, v, names, &i);

	if (r == 1)
		*out = val[i];
	return r;
}
