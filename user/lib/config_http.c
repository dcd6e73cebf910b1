/* VirtualService spec.http (Istio HTTPRoute) into the model: matches, destinations, redirect,
 * directResponse, rewrite, timeout, retries, fault, mirror, header edits; checked as Istio does. */
#include "config_internal.h"
#include "http_match.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- small readers ---- */

/* "warning: <file>:<line>: <Kind> <ns>/<name>: <path>: <what>", as bm_px_err words an error. */
static void warn(struct bm_px *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void warn(struct bm_px *p, int line, const char *fmt, ...)
{
	char what[512], msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "warning: %s:%d: %s %s/%s: %s%s%s", p->file, line, p->kind,
		 p->ns ? p->ns : "", p->name ? p->name : "", p->path, p->plen ? ": " : "", what);
	bm_cfg_diag_raw(p->c, BM_DIAG_WARNING, p->file, line, msg);
}

/* Keys of map outside known[] are reported unsupported; *never is set when there is one (a
 * condition we cannot evaluate must not widen what a rule catches). */
static void unknown_never(struct bm_px *p, const struct bm_ynode *map, const char *const *known,
			  bool *never)
{
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (!bm_y_is_null(map->kids[i + 1]) && !bm_cfg_one_of(map->kids[i]->str, known))
			*never = true;
	bm_px_unknown(p, map, known);
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s += 'a' - 'A';
}

/* Go/protobuf duration text ("10s", "1.5s", "250ms", "1m30s", "0") in nanoseconds. 0, or -1
 * when malformed or beyond 2^62 ns. */
static int parse_duration(const char *s, uint64_t *out)
{
	static const struct {
		const char *u;
		uint64_t ns;
	} units[] = { { "ns", 1 },	   { "us", 1000 },	     { "\xc2\xb5s", 1000 },
		      { "ms", 1000000 }, { "s", 1000000000 },	     { "m", 60000000000 },
		      { "h", 3600000000000 } };
	uint64_t total = 0;

	if (*s == '+')
		s++;
	if (!strcmp(s, "0")) {
		*out = 0;
		return 0;
	}
	if (!*s)
		return -1;
	while (*s) {
		uint64_t whole = 0, frac = 0, scale = 1, v;
		bool digits = false;
		size_t u;

		for (; *s >= '0' && *s <= '9'; s++, digits = true)
			if (__builtin_mul_overflow(whole, 10, &whole) ||
			    __builtin_add_overflow(whole, (uint64_t)(*s - '0'), &whole))
				return -1;
		if (*s == '.')
			for (s++; *s >= '0' && *s <= '9'; s++, digits = true)
				if (scale < 1000000000000000000ull) { /* extra digits are below 1 ns */
					frac = frac * 10 + (uint64_t)(*s - '0');
					scale *= 10;
				}
		if (!digits)
			return -1;
		for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) /* "ms" is tried before "m" */
			if (!strncmp(s, units[u].u, strlen(units[u].u)))
				break;
		if (u == sizeof(units) / sizeof(units[0]))
			return -1;
		s += strlen(units[u].u);
		if (__builtin_mul_overflow(whole, units[u].ns, &v) ||
		    __builtin_add_overflow(v, (uint64_t)((long double)frac * units[u].ns / scale), &v) ||
		    __builtin_add_overflow(total, v, &total) || total > (1ull << 62))
			return -1;
	}
	*out = total;
	return 0;
}

/* A duration field in milliseconds; min_ms 0 accepts "0s". Istio takes only whole ms. */
int bm_px_fduration(struct bm_px *p, const struct bm_ynode *map, const char *key, uint32_t min_ms,
		     uint32_t *out_ms)
{
	const struct bm_ynode *v = bm_px_val(map, key);
	const char *s;
	uint64_t ns;
	size_t m;
	int r;

	if (!v)
		return 0;
	m = bm_px_push(p, key);
	r = bm_px_str(p, v, &s);
	if (r == 1) {
		if (*s == '-') {
			bm_px_err(p, v->line, "\"%.40s\": a duration cannot be negative", s);
			r = -1;
		} else if (parse_duration(s, &ns)) {
			bm_px_err(p, v->line, "\"%.40s\" is not a duration (e.g. \"10s\", \"1.5s\", "
					      "\"250ms\", \"1m\")", s);
			r = -1;
		} else if (ns % 1000000) {
			bm_px_err(p, v->line, "\"%.40s\": only durations to ms precision are supported",
				  s);
			r = -1;
		} else if (ns / 1000000 < min_ms) {
			bm_px_err(p, v->line, "\"%.40s\": the duration must be at least 1ms", s);
			r = -1;
		} else if (ns / 1000000 > UINT32_MAX) {
			bm_px_err(p, v->line, "\"%.40s\" is too long (at most 49 days)", s);
			r = -1;
		} else {
			*out_ms = (uint32_t)(ns / 1000000);
		}
	}
	bm_px_pop(p, m);
	return r;
}

/* Istio Percent {value: double} at key: 0 or 0.0001..100, in millionths of requests. */
static int fpercent(struct bm_px *p, const struct bm_ynode *map, const char *key, uint32_t *ppm)
{
	static const char *const known[] = { "value", NULL };
	const struct bm_ynode *pm = NULL, *v;
	size_t m, mv;
	int r = bm_px_fmap(p, map, key, &pm);
	char *end;
	double d;

	if (r != 1)
		return r;
	m = bm_px_push(p, key);
	bm_px_unknown(p, pm, known);
	*ppm = 0;
	v = bm_px_val(pm, "value");
	if (v) {
		mv = bm_px_push(p, "value");
		d = v->type == BM_Y_SCALAR && !v->quoted ? strtod(v->str, &end) : NAN;
		if (isnan(d) || *end || !v->len) {
			bm_px_err(p, v->line, "expected a number, got %s",
				  v->type == BM_Y_SCALAR ? v->str : "a map or list");
			r = -1;
		} else if (d < 0 || d > 100 || (d > 0 && d < 0.0001)) {
			bm_px_err(p, v->line, "percentage %.40s is neither 0 nor in range 0.0001..100",
				  v->str);
			r = -1;
		} else {
			*ppm = (uint32_t)(d * 10000 + 0.5);
		}
		bm_px_pop(p, mv);
	}
	bm_px_pop(p, m);
	return r;
}

/* ---- StringMatch and the maps of them ---- */

/* The StringMatch node v (path pushed): one of exact, prefix, regex; {} is PRESENT. */
static void string_match(struct bm_px *p, const struct bm_ynode *v, struct bm_string_match *sm,
			 bool *never)
{
	static const char *const known[] = { "exact", "prefix", "regex", NULL };
	static const enum bm_string_match_kind kinds[] = { BM_SM_EXACT, BM_SM_PREFIX, BM_SM_REGEX };
	char err[256];
	int n = 0;

	if (bm_px_map(p, v) != 1)
		return;
	sm->loc.file = p->file;
	sm->loc.line = v->line;
	sm->kind = BM_SM_PRESENT;
	unknown_never(p, v, known, never);
	for (int i = 0; known[i]; i++) {
		const struct bm_ynode *val = bm_px_val(v, known[i]);

		if (!val)
			continue;
		if (n++) {
			bm_px_err(p, val->line, "exact, prefix and regex are exclusive");
			continue;
		}
		if (bm_px_fdup(p, v, known[i], &sm->value) != 1)
			continue;
		sm->kind = kinds[i];
		if (kinds[i] == BM_SM_PREFIX && !sm->value[0])
			bm_px_ferr(p, v, known[i], "a prefix match must not be empty");
		else if (kinds[i] == BM_SM_REGEX && !sm->value[0])
			bm_px_ferr(p, v, known[i], "a regex match must not be empty");
		else if (kinds[i] == BM_SM_REGEX && bm_http_regex_check(sm->value, err, sizeof(err)))
			bm_px_ferr(p, v, known[i], "%s", err);
	}
}

static void fstring_match(struct bm_px *p, const struct bm_ynode *map, const char *key,
			  struct bm_string_match *sm, bool *never)
{
	const struct bm_ynode *v = bm_px_val(map, key);
	size_t m;

	if (!v)
		return;
	m = bm_px_push(p, key);
	string_match(p, v, sm, never);
	bm_px_pop(p, m);
}

static bool header_match_name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return false;
	return true;
}

/* headers / withoutHeaders (hdr) or queryParams: a map of name -> StringMatch. */
static void kv_matches(struct bm_px *p, const struct bm_ynode *mreq, const char *key, bool hdr,
		       bool mesh, struct bm_kv_match **arr, size_t *n, bool *never)
{
	const struct bm_ynode *map = NULL;
	size_t mark;

	if (bm_px_fmap(p, mreq, key, &map) != 1)
		return;
	mark = bm_px_push(p, key);
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct bm_ynode *k = map->kids[i], *v = map->kids[i + 1];
		size_t mk = bm_px_push(p, k->str);
		struct bm_kv_match *kv;

		if (hdr && !strncmp(k->str, "@request.auth.claims", 20)) {
			if (mesh)
				bm_px_err(p, k->line, "JWT claim based routing is only supported for "
						      "gateways");
			else
				bm_px_unsup_why(p, k->line, "JWT claim routing: this match never applies");
			*never = true;
		} else if (hdr && !header_match_name_ok(k->str)) {
			bm_px_err(p, k->line, "\"%.64s\" is not a valid header name ([-_A-Za-z0-9]+)",
				  k->str);
		} else if (bm_y_is_null(v)) {
			bm_px_err(p, v->line, "a match cannot be null (write {} for \"present\")");
		} else if ((kv = bm_px_grow(p, arr, n, sizeof(**arr)))) {
			kv->name = bm_px_strdup(p, k->str);
			if (kv->name && hdr) {
				lower(kv->name);
				for (size_t j = 0; j + 1 < *n; j++)
					if (!strcmp((*arr)[j].name, kv->name))
						bm_px_err(p, k->line, "header \"%.64s\" given twice (names "
								      "are case-insensitive)", kv->name);
			}
			string_match(p, v, &kv->match, never);
		}
		bm_px_pop(p, mk);
	}
	bm_px_pop(p, mark);
}

/* ---- match[] ---- */

static void http_match(struct bm_px *p, const struct bm_ynode *it, bool mesh,
		       struct bm_http_match *mt)
{
	static const char *const known[] = { "name", "uri", "scheme", "method", "authority",
					     "headers", "withoutHeaders", "queryParams",
					     "ignoreUriCase", "port", "sourceLabels",
					     "sourceNamespace", "gateways", "statPrefix", NULL };
	const char *stat;

	mt->loc.file = p->file;
	mt->loc.line = it->line;
	unknown_never(p, it, known, &mt->never); /* statPrefix: stats only, accepted */
	bm_px_fdup(p, it, "name", &mt->name);
	fstring_match(p, it, "uri", &mt->uri, &mt->never);
	fstring_match(p, it, "scheme", &mt->scheme, &mt->never);
	fstring_match(p, it, "method", &mt->method, &mt->never);
	fstring_match(p, it, "authority", &mt->authority, &mt->never);
	kv_matches(p, it, "headers", true, mesh, &mt->headers, &mt->n_headers, &mt->never);
	kv_matches(p, it, "withoutHeaders", true, mesh, &mt->without_headers,
		   &mt->n_without_headers, &mt->never);
	kv_matches(p, it, "queryParams", false, mesh, &mt->query_params, &mt->n_query_params,
		   &mt->never);
	bm_px_fbool(p, it, "ignoreUriCase", &mt->ignore_uri_case);
	bm_px_fport(p, it, "port", &mt->port);
	if (bm_px_flabels(p, it, "sourceLabels", &mt->source_labels) == 1)
		mt->has_source_labels = true;
	if (bm_px_fdup(p, it, "sourceNamespace", &mt->source_namespace) == 1 &&
	    !bm_cfg_is_dns_label(mt->source_namespace))
		bm_px_ferr(p, it, "sourceNamespace", "\"%.64s\" is not a valid namespace name",
			  mt->source_namespace);
	bm_px_fstrs(p, it, "gateways", &mt->gateways, &mt->n_gateways);
	bm_px_fstr(p, it, "statPrefix", &stat);
}

/* ---- header edits ---- */

static bool is_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Header names that may be edited: tokens; "host"/":authority" only in request set/add (they
 * rewrite the authority), no other ':' names. NULL when fine, else why not. */
static const char *edit_name_bad(const char *s, bool req_set)
{
	bool authority = !strcasecmp(s, "host") || !strcasecmp(s, ":authority");

	if (!*s)
		return "a header name cannot be empty";
	if (authority && !req_set)
		return "the Host header cannot be changed here";
	if (s[0] == ':' && !authority)
		return "a header name cannot have a \":\" prefix";
	for (const char *c = s + (s[0] == ':'); *c; c++)
		if (!is_tchar(*c))
			return "not a valid header name";
	return NULL;
}

/* A header value: no control characters; "%%" is a literal '%'; Envoy's %VARIABLE% forms are
 * not expanded here (1: unsupported), a lone '%' is an error (-1, why set). */
static int edit_value(char *v, const char **why)
{
	char *w = v;

	for (const char *s = v; *s; s++) {
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f) {
			*why = "control characters are not allowed in a header value";
			return -1;
		}
		if (*s == '%' && s[1] == '%') {
			*w++ = '%';
			s++;
			continue;
		}
		if (*s == '%') {
			if (!strchr(s + 1, '%')) {
				*why = "un-escaped % (write %% for a literal %)";
				return -1;
			}
			return 1;
		}
		*w++ = *s;
	}
	*w = '\0';
	return 0;
}

static void edit_map(struct bm_px *p, const struct bm_ynode *ops, const char *key, bool req_set,
		     struct bm_header_kv **arr, size_t *n)
{
	const struct bm_ynode *map = NULL;
	size_t mark;

	if (bm_px_fmap(p, ops, key, &map) != 1)
		return;
	mark = bm_px_push(p, key);
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct bm_ynode *k = map->kids[i];
		const char *why = bm_y_is_null(map->kids[i + 1]) ? NULL : edit_name_bad(k->str, req_set);
		size_t mk = bm_px_push(p, k->str);
		struct bm_header_kv kv = { 0 }, *slot;
		const char *val;
		int r;

		if (why) {
			bm_px_err(p, k->line, "%s", why);
		} else if (bm_px_fstr(p, map, k->str, &val) == 1 &&
			   (kv.value = bm_px_strdup(p, val))) {
			r = edit_value(kv.value, &why);
			if (r < 0)
				bm_px_err(p, map->kids[i + 1]->line, "%s", why);
			else if (r > 0)
				bm_px_unsup_why(p, k->line, "Envoy %VARIABLE% values are not expanded: "
							    "this header is not edited");
			else if ((kv.name = bm_px_strdup(p, k->str)) &&
				 (slot = bm_px_grow(p, arr, n, sizeof(**arr)))) {
				lower(kv.name);
				*slot = kv;
				kv.name = kv.value = NULL;
			}
		}
		free(kv.name);
		free(kv.value);
		bm_px_pop(p, mk);
	}
	bm_px_pop(p, mark);
}

static void edit_ops(struct bm_px *p, const struct bm_ynode *hm, const char *key, bool req,
		     struct bm_header_ops *o)
{
	static const char *const known[] = { "set", "add", "remove", NULL };
	const struct bm_ynode *ops = NULL;
	size_t mark, mr;

	if (bm_px_fmap(p, hm, key, &ops) != 1)
		return;
	mark = bm_px_push(p, key);
	bm_px_unknown(p, ops, known);
	edit_map(p, ops, "set", req, &o->set, &o->n_set);
	edit_map(p, ops, "add", req, &o->add, &o->n_add);
	if (bm_px_fstrs(p, ops, "remove", &o->remove, &o->n_remove) == 1) {
		mr = bm_px_push(p, "remove");
		for (size_t i = 0; i < o->n_remove; i++) {
			const char *why = edit_name_bad(o->remove[i], false);
			size_t mi = bm_px_push_idx(p, i);

			if (why)
				bm_px_err(p, bm_px_val(ops, "remove")->kids[i]->line, "%s", why);
			lower(o->remove[i]);
			bm_px_pop(p, mi);
		}
		bm_px_pop(p, mr);
	}
	bm_px_pop(p, mark);
}

static void headers(struct bm_px *p, const struct bm_ynode *parent, struct bm_http_headers *h)
{
	static const char *const known[] = { "request", "response", NULL };
	const struct bm_ynode *hm = NULL;
	size_t mark;

	if (bm_px_fmap(p, parent, "headers", &hm) != 1)
		return;
	mark = bm_px_push(p, "headers");
	bm_px_unknown(p, hm, known);
	edit_ops(p, hm, "request", true, &h->request);
	edit_ops(p, hm, "response", false, &h->response);
	bm_px_pop(p, mark);
}

/* ---- actions: route, redirect, directResponse ---- */

static void route_dests(struct bm_px *p, const struct bm_ynode *rs, struct bm_http_route *rt)
{
	static const char *const known[] = { "destination", "weight", "headers", NULL };
	uint64_t total = 0;
	size_t mark = bm_px_push(p, "route");

	if (rs->n == 0)
		bm_px_err(p, rs->line, "at least one destination is required");
	for (size_t j = 0; j < rs->n; j++) {
		const struct bm_ynode *it = rs->kids[j];
		size_t mj = bm_px_push_idx(p, j);
		struct bm_http_route_dest *rd;
		long long w;

		if (bm_px_map(p, it) == 1 &&
		    (rd = bm_px_grow(p, &rt->route, &rt->n_route, sizeof(*rt->route)))) {
			bm_px_unknown(p, it, known);
			if (bm_px_fint(p, it, "weight", 0, INT32_MAX, &w) == 1) {
				rd->weight = (uint32_t)w;
				rd->has_weight = true;
				total += rd->weight;
			}
			if (bm_cfg_destination(p, it, "destination", &rd->dest) == 0)
				bm_px_missing(p, it->line, "destination");
			headers(p, it, &rd->headers);
		}
		bm_px_pop(p, mj);
	}
	/* Weights are relative; several destinations need some weight to share. */
	if (rt->n_route > 1 && total == 0)
		bm_px_err(p, rs->line, "the weights of several destinations are all zero");
	bm_px_pop(p, mark);
}

static void redirect(struct bm_px *p, const struct bm_ynode *rd, struct bm_http_route *rt)
{
	static const char *const known[] = { "uri", "authority", "port", "scheme", "redirectCode",
					     NULL };
	struct bm_http_redirect *r = &rt->redirect;
	long long code;
	size_t mark = bm_px_push(p, "redirect");

	bm_px_unknown(p, rd, known); /* derivePort */
	bm_px_fdup(p, rd, "uri", &r->uri);
	bm_px_fdup(p, rd, "authority", &r->authority);
	bm_px_fport(p, rd, "port", &r->port);
	if (bm_px_fdup(p, rd, "scheme", &r->scheme) == 1 && strcmp(r->scheme, "http") &&
	    strcmp(r->scheme, "https"))
		bm_px_ferr(p, rd, "scheme", "\"%.40s\": the scheme must be \"http\" or \"https\"",
			  r->scheme);
	r->code = 301;
	if (bm_px_fint(p, rd, "redirectCode", 300, 399, &code) == 1) {
		if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
			r->code = (uint16_t)code;
		} else {
			size_t mc = bm_px_push(p, "redirectCode");

			bm_px_unsup(p, bm_px_key_line(rd, "redirectCode"), "=%lld", code);
			bm_px_pop(p, mc);
		}
	}
	if (!r->uri && !r->authority && !r->port && !r->scheme && !bm_px_val(rd, "derivePort"))
		bm_px_err(p, rd->line, "a redirect must set uri, authority, scheme or port");
	bm_px_pop(p, mark);
}

static void direct_response(struct bm_px *p, const struct bm_ynode *dr, struct bm_http_route *rt)
{
	static const char *const known[] = { "status", "body", NULL };
	static const char *const bknown[] = { "string", NULL };
	const struct bm_ynode *body = NULL;
	size_t mark = bm_px_push(p, "directResponse"), mb;
	long long st;
	int r;

	bm_px_unknown(p, dr, known);
	r = bm_px_fint(p, dr, "status", 200, 599, &st);
	if (r == 0)
		bm_px_missing(p, dr->line, "status");
	else if (r == 1)
		rt->direct_response.status = (uint16_t)st;
	if (bm_px_fmap(p, dr, "body", &body) == 1) {
		mb = bm_px_push(p, "body");
		bm_px_unknown(p, body, bknown); /* bytes */
		if (bm_px_fdup(p, body, "string", &rt->direct_response.body) == 1) {
			size_t len = strlen(rt->direct_response.body);

			if (len > (1u << 20))
				bm_px_ferr(p, body, "string", "a direct response body must be less than "
							      "1MB");
			else if (len > 100 * 1024)
				warn(p, bm_px_key_line(body, "string"), "a large direct response body "
					"(%zu bytes) is held in memory by every agent", len);
		}
		bm_px_pop(p, mb);
	}
	bm_px_pop(p, mark);
}

static void rewrite(struct bm_px *p, const struct bm_ynode *rw, struct bm_http_route *rt)
{
	static const char *const known[] = { "uri", "authority", NULL };
	size_t mark = bm_px_push(p, "rewrite");

	bm_px_unknown(p, rw, known); /* uriRegexRewrite */
	bm_px_fdup(p, rw, "uri", &rt->rewrite.uri);
	bm_px_fdup(p, rw, "authority", &rt->rewrite.authority);
	if (rt->rewrite.uri && bm_px_val(rw, "uriRegexRewrite"))
		bm_px_err(p, rw->line, "uri and uriRegexRewrite are exclusive");
	if (!rt->rewrite.uri && !rt->rewrite.authority && !bm_px_val(rw, "uriRegexRewrite"))
		bm_px_err(p, rw->line, "a rewrite must set uri, uriRegexRewrite or authority");
	rt->has_rewrite = rt->rewrite.uri || rt->rewrite.authority;
	bm_px_pop(p, mark);
}

/* ---- timeout, retries, fault, mirror ---- */

static void retry_on(struct bm_px *p, const struct bm_ynode *v, struct bm_http_retry *rr)
{
	static const char *const names[] = { "5xx", "gateway-error", "reset", "connect-failure",
					     "retriable-4xx", "refused-stream", NULL };
	static const uint32_t bits[] = { BM_RETRY_5XX, BM_RETRY_GATEWAY_ERROR, BM_RETRY_RESET,
					 BM_RETRY_CONNECT_FAILURE, BM_RETRY_RETRIABLE_4XX,
					 BM_RETRY_REFUSED_STREAM };
	/* Envoy policies bpfmesh does not implement (gRPC ones, rate limits, header rules). */
	static const char *const unsup[] = { "reset-before-request", "retriable-headers",
					     "envoy-ratelimited", "http3-post-connect-failure",
					     "cancelled", "deadline-exceeded", "internal",
					     "resource-exhausted", "unavailable", NULL };
	const char *s = v->str;

	rr->has_retry_on = true;
	while (1) {
		size_t len = strcspn(s, ",");
		char w[40];
		int i;

		snprintf(w, sizeof(w), "%.*s", (int)(len < sizeof(w) ? len : sizeof(w) - 1), s);
		for (i = 0; names[i] && strcmp(w, names[i]); i++)
			;
		if (len < sizeof(w) && names[i]) {
			rr->retry_on |= bits[i];
		} else if (len < sizeof(w) && !strcmp(w, "retriable-status-codes")) {
			/* the codes are the numeric entries */
		} else if (len < sizeof(w) && bm_cfg_one_of(w, unsup)) {
			bm_px_unsup(p, v->line, "=%s", w);
		} else if (len == 3 && w[0] >= '1' && w[0] <= '5' && w[1] >= '0' && w[1] <= '9' &&
			   w[2] >= '0' && w[2] <= '9') {
			uint16_t *c = bm_px_grow(p, &rr->retry_codes, &rr->n_retry_codes,
						 sizeof(*rr->retry_codes));

			if (c)
				*c = (uint16_t)atoi(w);
		} else {
			bm_px_err(p, v->line, "\"%.*s\" is not a valid retryOn policy",
				  (int)(len > 40 ? 40 : len), s);
		}
		if (!s[len])
			break;
		s += len + 1;
	}
}

static void retries(struct bm_px *p, const struct bm_ynode *re, struct bm_http_route *rt)
{
	static const char *const known[] = { "attempts", "perTryTimeout", "retryOn",
					     "retryRemoteLocalities", NULL };
	struct bm_http_retry *rr = &rt->retries;
	const struct bm_ynode *on = bm_px_val(re, "retryOn");
	size_t mark = bm_px_push(p, "retries"), mo;
	long long a;
	bool remote;

	rt->has_retries = true;
	bm_px_unknown(p, re, known);
	if (bm_px_fint(p, re, "attempts", 0, INT32_MAX, &a) == 1)
		rr->attempts = (uint32_t)a;
	bm_px_fduration(p, re, "perTryTimeout", 1, &rr->per_try_timeout_ms);
	bm_px_fbool(p, re, "retryRemoteLocalities", &remote); /* one locality here: accepted */
	if (on) {
		const char *s;

		mo = bm_px_push(p, "retryOn");
		if (bm_px_str(p, on, &s) == 1)
			retry_on(p, on, rr);
		bm_px_pop(p, mo);
	}
	if (!rr->attempts && (bm_px_val(re, "perTryTimeout") || on ||
			      bm_px_val(re, "retryRemoteLocalities")))
		bm_px_err(p, re->line, "a retry policy is configured but attempts is 0 (retries "
				       "disabled)");
	bm_px_pop(p, mark);
}

static void fault(struct bm_px *p, const struct bm_ynode *f, struct bm_http_route *rt)
{
	static const char *const known[] = { "delay", "abort", NULL };
	static const char *const dknown[] = { "fixedDelay", "percentage", "percent", NULL };
	static const char *const aknown[] = { "httpStatus", "percentage", NULL };
	struct bm_http_fault *hf = &rt->fault;
	const struct bm_ynode *d = NULL, *a = NULL;
	size_t mark = bm_px_push(p, "fault"), m;
	long long v;

	bm_px_unknown(p, f, known);
	rt->has_fault = true;
	if (!bm_px_val(f, "delay") && !bm_px_val(f, "abort"))
		bm_px_err(p, f->line, "a fault must have an abort and/or a delay");
	if (bm_px_fmap(p, f, "delay", &d) == 1) {
		m = bm_px_push(p, "delay");
		bm_px_unknown(p, d, dknown); /* exponentialDelay */
		if (bm_px_fduration(p, d, "fixedDelay", 1, &hf->delay_ms) == 1)
			hf->has_delay = true;
		else if (!bm_px_val(d, "fixedDelay") && !bm_px_val(d, "exponentialDelay"))
			bm_px_missing(p, d->line, "fixedDelay");
		if (bm_px_val(d, "percentage"))
			fpercent(p, d, "percentage", &hf->delay_ppm);
		else if (bm_px_fint(p, d, "percent", 0, 100, &v) == 1)
			hf->delay_ppm = (uint32_t)v * 10000;
		else if (hf->has_delay)
			warn(p, d->line, "no percentage: no request is delayed");
		bm_px_pop(p, m);
	}
	if (bm_px_fmap(p, f, "abort", &a) == 1) {
		m = bm_px_push(p, "abort");
		bm_px_unknown(p, a, aknown); /* grpcStatus, http2Error */
		if (bm_px_fint(p, a, "httpStatus", 200, 599, &v) == 1) {
			hf->has_abort = true;
			hf->abort_status = (uint16_t)v;
		} else if (!bm_px_val(a, "httpStatus") && !bm_px_val(a, "grpcStatus") &&
			   !bm_px_val(a, "http2Error")) {
			warn(p, a->line, "no httpStatus: nothing is aborted");
		}
		if (fpercent(p, a, "percentage", &hf->abort_ppm) == 0 && hf->has_abort)
			warn(p, a->line, "no percentage: no request is aborted");
		bm_px_pop(p, m);
	}
	bm_px_pop(p, mark);
}

/* ---- one rule ---- */

static void http_route(struct bm_px *p, const struct bm_ynode *it, bool mesh,
		       struct bm_http_route *rt)
{
	static const char *const known[] = { "name", "match", "route", "redirect", "directResponse",
					     "delegate", "rewrite", "timeout", "retries", "fault",
					     "mirror", "mirrorPercentage", "headers", NULL };
	const struct bm_ynode *ms = NULL, *rs = NULL, *rd = NULL, *dr = NULL, *rw = NULL,
			      *re = NULL, *f = NULL;
	int line = it->line;

	rt->loc.file = p->file;
	rt->loc.line = line;
	rt->mirror_ppm = 1000000;
	bm_px_unknown(p, it, known); /* corsPolicy, mirrors, mirrorPercent, ... */
	bm_px_fdup(p, it, "name", &rt->name);
	if (bm_px_fseq(p, it, "match", &ms) == 1) {
		size_t mark = bm_px_push(p, "match");

		for (size_t i = 0; i < ms->n; i++) {
			size_t mi = bm_px_push_idx(p, i);
			struct bm_http_match *mt;

			if (bm_px_map(p, ms->kids[i]) == 1 &&
			    (mt = bm_px_grow(p, &rt->match, &rt->n_match, sizeof(*rt->match))))
				http_match(p, ms->kids[i], mesh, mt);
			bm_px_pop(p, mi);
		}
		bm_px_pop(p, mark);
	}
	if (bm_px_fseq(p, it, "route", &rs) == 1) {
		rt->action = BM_HTTP_FORWARD;
		route_dests(p, rs, rt);
	}
	if (bm_px_fmap(p, it, "redirect", &rd) == 1) {
		rt->action = BM_HTTP_REDIRECT;
		redirect(p, rd, rt);
	}
	if (bm_px_fmap(p, it, "directResponse", &dr) == 1) {
		rt->action = BM_HTTP_DIRECT_RESPONSE;
		direct_response(p, dr, rt);
	}
	if (bm_px_val(it, "delegate")) {
		size_t m = bm_px_push(p, "delegate");

		rt->action = BM_HTTP_DELEGATE;
		bm_px_unsup_why(p, bm_px_key_line(it, "delegate"),
				"delegate VirtualServices are not supported: this rule is skipped");
		bm_px_pop(p, m);
	}
	if (bm_px_fmap(p, it, "rewrite", &rw) == 1)
		rewrite(p, rw, rt);
	if (bm_px_fduration(p, it, "timeout", 0, &rt->timeout_ms) == 1)
		rt->has_timeout = true;
	if (bm_px_fmap(p, it, "retries", &re) == 1)
		retries(p, re, rt);
	if (bm_px_fmap(p, it, "fault", &f) == 1)
		fault(p, f, rt);
	if (bm_cfg_destination(p, it, "mirror", &rt->mirror) == 1)
		rt->has_mirror = true;
	fpercent(p, it, "mirrorPercentage", &rt->mirror_ppm);
	headers(p, it, &rt->headers);

	/* What Istio refuses: one action per rule, and what goes with a redirect. */
	if ((rs != NULL) + (rd != NULL) + (dr != NULL) + (bm_px_val(it, "delegate") != NULL) > 1)
		bm_px_err(p, line, "route, redirect, directResponse and delegate are exclusive");
	else if (!rs && !rd && !dr && !bm_px_val(it, "delegate"))
		bm_px_err(p, line, "route, redirect or directResponse is required");
	if (rd && rw)
		bm_px_err(p, line, "a rule cannot have both rewrite and redirect");
	if (rd && f)
		bm_px_err(p, line, "a rule cannot have both fault and redirect");
	if (rt->rewrite.authority) {
		for (size_t i = 0; i < rt->headers.request.n_set; i++)
			if (!strcmp(rt->headers.request.set[i].name, "host") ||
			    !strcmp(rt->headers.request.set[i].name, ":authority"))
				bm_px_err(p, line, "the authority is set twice: rewrite.authority "
						   "and headers.request.set.%s",
					  rt->headers.request.set[i].name);
	}
}

/* ---- spec.http ---- */

void bm_cfg_http_routes(struct bm_px *p, const struct bm_ynode *spec, struct bm_virtual_service *x,
			bool mesh)
{
	const struct bm_ynode *list = NULL;
	size_t mark;
	long catch_all = -1;

	if (bm_px_fseq(p, spec, "http", &list) != 1)
		return;
	x->has_http = true;
	x->http_loc.file = p->file;
	x->http_loc.line = bm_px_key_line(spec, "http");
	mark = bm_px_push(p, "http");
	for (size_t i = 0; i < list->n; i++) {
		size_t m = bm_px_push_idx(p, i);
		struct bm_http_route *rt;

		if (bm_px_map(p, list->kids[i]) == 1 &&
		    (rt = bm_px_grow(p, &x->http, &x->n_http, sizeof(*x->http)))) {
			http_route(p, list->kids[i], mesh, rt);
			/* First match wins: nothing after a rule without match is ever used. */
			if (catch_all >= 0 && catch_all + 1 == (long)i)
				warn(p, list->kids[i]->line, "never used: spec.http[%ld] before it has "
					"no match and takes every request", catch_all);
			if (catch_all < 0 && !rt->n_match && rt->action != BM_HTTP_DELEGATE)
				catch_all = (long)i;
		}
		bm_px_pop(p, m);
	}
	bm_px_pop(p, mark);
}

/* ---- freeing ---- */

static void kv_free(struct bm_kv_match *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].match.value);
	}
	free(v);
}

static void ops_free(struct bm_header_ops *o)
{
	for (size_t i = 0; i < o->n_set; i++) {
		free(o->set[i].name);
		free(o->set[i].value);
	}
	for (size_t i = 0; i < o->n_add; i++) {
		free(o->add[i].name);
		free(o->add[i].value);
	}
	for (size_t i = 0; i < o->n_remove; i++)
		free(o->remove[i]);
	free(o->set);
	free(o->add);
	free(o->remove);
}

static void headers_free(struct bm_http_headers *h)
{
	ops_free(&h->request);
	ops_free(&h->response);
}

static void match_free(struct bm_http_match *m)
{
	free(m->name);
	free(m->uri.value);
	free(m->scheme.value);
	free(m->method.value);
	free(m->authority.value);
	kv_free(m->headers, m->n_headers);
	kv_free(m->without_headers, m->n_without_headers);
	kv_free(m->query_params, m->n_query_params);
	bm_cfg_labels_free(&m->source_labels);
	free(m->source_namespace);
	for (size_t i = 0; i < m->n_gateways; i++)
		free(m->gateways[i]);
	free(m->gateways);
}

void bm_cfg_http_routes_free(struct bm_http_route *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct bm_http_route *rt = &v[i];

		free(rt->name);
		for (size_t j = 0; j < rt->n_match; j++)
			match_free(&rt->match[j]);
		free(rt->match);
		for (size_t j = 0; j < rt->n_route; j++) {
			free(rt->route[j].dest.host);
			free(rt->route[j].dest.subset);
			headers_free(&rt->route[j].headers);
		}
		free(rt->route);
		free(rt->redirect.uri);
		free(rt->redirect.authority);
		free(rt->redirect.scheme);
		free(rt->direct_response.body);
		free(rt->rewrite.uri);
		free(rt->rewrite.authority);
		free(rt->retries.retry_codes);
		free(rt->mirror.host);
		free(rt->mirror.subset);
		headers_free(&rt->headers);
	}
	free(v);
}
