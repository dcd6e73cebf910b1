/* Istio HTTPMatchRequest semantics for the agent's router: spec.http compiled with pcre2
 * (full-match regexes, match limits), matched per request without allocating (docs/config.md). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "http_match.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* One StringMatch, ready to run. */
struct sm {
	enum bm_string_match_kind kind;
	bool nocase;      /* uri exact/prefix under ignoreUriCase */
	const char *val;  /* points into the model */
	size_t len;
	pcre2_code *re;
};

struct kvm {
	const char *name;
	size_t name_len;
	struct sm m;
};

struct cmatch {
	const struct bm_http_match *src;
	struct sm uri, scheme, method, authority;
	struct kvm *kv;   /* headers, then withoutHeaders, then queryParams */
	size_t n_hdr, n_without, n_qp;
};

struct crule {
	struct cmatch *m;
	size_t n;
};

struct bm_http_routes {
	const struct bm_virtual_service *vs;
	struct crule *rules;
	size_t n;
	pcre2_match_data *md;
	pcre2_match_context *mctx;
};

/* The request's parts, found once per request. */
struct view {
	const struct bm_http_req *req;
	const char *uri, *query, *method, *authority, *scheme;
	size_t uri_len, query_len, method_len, authority_len, scheme_len;
};

/* ---- regexes ---- */

/* RE2 semantics as far as pcre2 goes: whole-subject match, UTF-8 (invalid input just does not
 * match), '$' only at the very end, no \C, no backreferences. */
static pcre2_code *regex_compile(const char *re, char *err, size_t errlen)
{
	const uint32_t opts = PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF |
			      PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY |
			      PCRE2_NEVER_BACKSLASH_C;
	size_t n = strlen(re);
	PCRE2_UCHAR msg[160];
	PCRE2_SIZE off;
	pcre2_code *code;
	uint32_t backref = 0;
	int ec;

	if (n > BM_HTTP_REGEX_MAX) {
		snprintf(err, errlen, "the regex is too long (%zu characters, at most %d)", n,
			 BM_HTTP_REGEX_MAX);
		return NULL;
	}
	code = pcre2_compile((PCRE2_SPTR)re, n, opts, &ec, &off, NULL);
	if (!code) {
		pcre2_get_error_message(ec, msg, sizeof(msg));
		snprintf(err, errlen, "\"%.64s\" is not a valid regex: %s at offset %zu", re,
			 (const char *)msg, (size_t)off);
		return NULL;
	}
	if (pcre2_pattern_info(code, PCRE2_INFO_BACKREFMAX, &backref) == 0 && backref) {
		snprintf(err, errlen, "\"%.64s\" is not a valid regex: backreferences are not RE2 "
			 "syntax", re);
		pcre2_code_free(code);
		return NULL;
	}
	pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* the interpreter runs when JIT cannot */
	return code;
}

int bm_http_regex_check(const char *re, char *err, size_t errlen)
{
	pcre2_code *code = regex_compile(re, err, errlen);

	pcre2_code_free(code);
	return code ? 0 : -1;
}

/* ---- compile ---- */

static int sm_compile(struct sm *c, const struct bm_string_match *m, bool nocase, char *err,
		      size_t errlen)
{
	c->kind = m->kind;
	c->val = m->value ? m->value : "";
	c->len = strlen(c->val);
	c->nocase = nocase && (m->kind == BM_SM_EXACT || m->kind == BM_SM_PREFIX);
	if (m->kind == BM_SM_REGEX && !(c->re = regex_compile(m->value, err, errlen)))
		return -1;
	return 0;
}

static int kv_compile(struct kvm *out, const struct bm_kv_match *in, size_t n, char *err,
		      size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		out[i].name = in[i].name;
		out[i].name_len = strlen(in[i].name);
		if (sm_compile(&out[i].m, &in[i].match, false, err, errlen))
			return -1;
	}
	return 0;
}

static int match_compile(struct cmatch *c, const struct bm_http_match *m, char *err, size_t errlen)
{
	size_t n = m->n_headers + m->n_without_headers + m->n_query_params;

	c->src = m;
	c->n_hdr = m->n_headers;
	c->n_without = m->n_without_headers;
	c->n_qp = m->n_query_params;
	if (n && !(c->kv = calloc(n, sizeof(*c->kv)))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (sm_compile(&c->uri, &m->uri, m->ignore_uri_case, err, errlen) ||
	    sm_compile(&c->scheme, &m->scheme, false, err, errlen) ||
	    sm_compile(&c->method, &m->method, false, err, errlen) ||
	    sm_compile(&c->authority, &m->authority, false, err, errlen))
		return -1;
	if (n && (kv_compile(c->kv, m->headers, c->n_hdr, err, errlen) ||
		  kv_compile(c->kv + c->n_hdr, m->without_headers, c->n_without, err, errlen) ||
		  kv_compile(c->kv + c->n_hdr + c->n_without, m->query_params, c->n_qp, err,
			     errlen)))
		return -1;
	return 0;
}

int bm_http_routes_compile(const struct bm_virtual_service *vs, struct bm_http_routes **out,
			   char *err, size_t errlen)
{
	struct bm_http_routes *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r || (vs->n_http && !(r->rules = calloc(vs->n_http, sizeof(*r->rules)))) ||
	    !(r->md = pcre2_match_data_create(1, NULL)) ||
	    !(r->mctx = pcre2_match_context_create(NULL)))
		goto oom;
	r->vs = vs;
	r->n = vs->n_http;
	pcre2_set_match_limit(r->mctx, BM_HTTP_MATCH_LIMIT);
	for (size_t i = 0; i < vs->n_http; i++) {
		const struct bm_http_route *rt = &vs->http[i];
		struct crule *cr = &r->rules[i];

		if (rt->n_match && !(cr->m = calloc(rt->n_match, sizeof(*cr->m))))
			goto oom;
		cr->n = rt->n_match;
		for (size_t j = 0; j < rt->n_match; j++)
			if (match_compile(&cr->m[j], &rt->match[j], err, errlen))
				goto fail;
	}
	*out = r;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	bm_http_routes_free(r);
	return -1;
}

static void sm_free(struct sm *c)
{
	pcre2_code_free(c->re);
}

void bm_http_routes_free(struct bm_http_routes *r)
{
	if (!r)
		return;
	for (size_t i = 0; r->rules && i < r->n; i++) {
		for (size_t j = 0; j < r->rules[i].n; j++) {
			struct cmatch *c = &r->rules[i].m[j];

			sm_free(&c->uri);
			sm_free(&c->scheme);
			sm_free(&c->method);
			sm_free(&c->authority);
			for (size_t k = 0; c->kv && k < c->n_hdr + c->n_without + c->n_qp; k++)
				sm_free(&c->kv[k].m);
			free(c->kv);
		}
		free(r->rules[i].m);
	}
	free(r->rules);
	pcre2_match_data_free(r->md);
	pcre2_match_context_free(r->mctx);
	free(r);
}

/* ---- per request ---- */

static bool ci_eq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return false;
	}
	return true;
}

static bool sm_run(const struct bm_http_routes *r, const struct sm *c, const char *s, size_t len)
{
	switch (c->kind) {
	case BM_SM_NONE:
	case BM_SM_PRESENT:
		return true;
	case BM_SM_EXACT:
		if (len != c->len)
			return false;
		return c->nocase ? ci_eq(s, c->val, len) : !memcmp(s, c->val, len);
	case BM_SM_PREFIX:
		if (len < c->len)
			return false;
		return c->nocase ? ci_eq(s, c->val, c->len) : !memcmp(s, c->val, c->len);
	case BM_SM_REGEX:
		/* Errors, the match limit included, count as "no match". */
		return pcre2_match(c->re, (PCRE2_SPTR)(len ? s : ""), len, 0, 0, r->md, r->mctx) >= 0;
	}
	return false;
}

/* A header's value: 0 when absent; 1 with (*v, *len) the value, or all its values joined by ","
 * in buf as Envoy matches them; -1 when the joined value does not fit in buf. */
static int header_value(const struct bm_http_req *req, const struct kvm *k, char *buf,
			const char **v, size_t *len)
{
	size_t used = 0, found = 0;

	for (size_t i = 0; i < req->n_hdrs; i++) {
		const struct bm_http_hdr *h = &req->hdrs[i];

		if (h->name_len != k->name_len || !ci_eq(h->name, k->name, k->name_len))
			continue;
		if (found++ == 0) {
			*v = h->value;
			*len = h->value_len;
			continue;
		}
		if (found == 2) { /* a second value: from now on, join in buf */
			if (*len > BM_HTTP_JOIN_MAX)
				return -1;
			memcpy(buf, *v, *len);
			used = *len;
		}
		if (used + 1 + h->value_len > BM_HTTP_JOIN_MAX)
			return -1;
		buf[used++] = ',';
		memcpy(buf + used, h->value, h->value_len);
		used += h->value_len;
		*v = buf;
		*len = used;
	}
	return found ? 1 : 0;
}

/* The first value of query parameter k (no percent-decoding, as Envoy's matcher). */
static bool query_param(const struct view *rv, const struct kvm *k, const char **v, size_t *len)
{
	const char *q = rv->query, *end;

	if (!q)
		return false; /* no query string */
	end = q + rv->query_len;
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q)), *pe = amp ? amp : end;
		const char *eq = memchr(q, '=', (size_t)(pe - q));
		const char *ke = eq ? eq : pe;

		if ((size_t)(ke - q) == k->name_len && !memcmp(q, k->name, k->name_len)) {
			*v = eq ? eq + 1 : pe;
			*len = (size_t)(pe - *v);
			return true;
		}
		q = pe + 1;
	}
	return false;
}

/* A gateway reference: (namespace, name), "mesh" has no namespace, and a bare name is in the
 * VirtualService's namespace (as Istio reads "gw" as "<ns>/gw"). */
struct gwref {
	const char *ns, *name;
	size_t ns_len, name_len;
};

static struct gwref gw_parse(const char *s, const char *vs_ns)
{
	struct gwref g = { .name = s, .name_len = strlen(s) };
	const char *slash = strchr(s, '/');

	if (!strcmp(s, "mesh"))
		return g;
	if (slash) {
		g.ns = s;
		g.ns_len = (size_t)(slash - s);
		g.name = slash + 1;
		g.name_len = strlen(slash + 1);
	} else {
		g.ns = vs_ns;
		g.ns_len = strlen(vs_ns);
	}
	return g;
}

/* gw among names (empty: [mesh]). */
static bool gateway_in(const char *gw, char *const *names, size_t n, const char *vs_ns)
{
	struct gwref g = gw_parse(gw, vs_ns), c;

	if (!n)
		return !g.ns;
	for (size_t i = 0; i < n; i++) {
		c = gw_parse(names[i], vs_ns);
		if (!g.ns || !c.ns) {
			if (!g.ns && !c.ns)
				return true;
			continue;
		}
		if (g.ns_len == c.ns_len && !memcmp(g.ns, c.ns, g.ns_len) &&
		    g.name_len == c.name_len && !memcmp(g.name, c.name, g.name_len))
			return true;
	}
	return false;
}

static bool entry_ok(const struct bm_http_routes *r, const struct cmatch *c, const struct view *rv,
		     uint16_t port, const struct bm_labels *labels, const char *caller_ns,
		     const char *gw)
{
	const struct bm_http_match *m = c->src;
	const struct bm_http_req *req = rv->req;
	char buf[BM_HTTP_JOIN_MAX];
	const char *v;
	size_t len;

	if (m->never || (m->port && m->port != port))
		return false;
	if (m->n_gateways && !gateway_in(gw, m->gateways, m->n_gateways, r->vs->meta.ns))
		return false;
	if (m->source_namespace && (!caller_ns || strcmp(m->source_namespace, caller_ns)))
		return false;
	if (m->source_labels.n && (!labels || !bm_labels_match(&m->source_labels, labels)))
		return false;
	if (!sm_run(r, &c->method, rv->method, rv->method_len) ||
	    !sm_run(r, &c->authority, rv->authority, rv->authority_len) ||
	    !sm_run(r, &c->scheme, rv->scheme, rv->scheme_len) ||
	    !sm_run(r, &c->uri, rv->uri, rv->uri_len))
		return false;
	for (size_t i = 0; i < c->n_hdr; i++)
		if (header_value(req, &c->kv[i], buf, &v, &len) != 1 ||
		    !sm_run(r, &c->kv[i].m, v, len))
			return false;
	for (size_t i = c->n_hdr; i < c->n_hdr + c->n_without; i++) {
		int h = header_value(req, &c->kv[i], buf, &v, &len);

		if (h < 0 || (h == 1 && sm_run(r, &c->kv[i].m, v, len)))
			return false;
	}
	for (size_t i = c->n_hdr + c->n_without; i < c->n_hdr + c->n_without + c->n_qp; i++)
		if (!query_param(rv, &c->kv[i], &v, &len) || !sm_run(r, &c->kv[i].m, v, len))
			return false;
	return true;
}

/* The path part of a request target (origin-form, or absolute-form "http://host/path"). */
static const char *target_path(const char *t)
{
	const char *sep = t[0] == '/' ? NULL : strstr(t, "://");

	if (sep && sep < t + strcspn(t, "/?#")) {
		sep += 3;
		sep += strcspn(sep, "/?#");
		return sep;
	}
	return t;
}

int bm_http_routes_match_entry(const struct bm_http_routes *r, const struct bm_http_req *req,
			       uint16_t port, const struct bm_labels *caller_labels,
			       const char *caller_ns, const char *gateway, int *entry)
{
	const struct bm_virtual_service *vs = r->vs;
	const char *gw = gateway ? gateway : "mesh";
	struct view rv = { .req = req };

	*entry = -1;
	/* The VirtualService applies only where it is bound; a match's gateways narrow that. */
	if (!gateway_in(gw, vs->gateways, vs->n_gateways, vs->meta.ns))
		return -1;
	rv.method = req->method ? req->method : "";
	rv.method_len = strlen(rv.method);
	rv.authority = req->authority ? req->authority : "";
	rv.authority_len = strlen(rv.authority);
	rv.scheme = req->scheme ? req->scheme : "";
	rv.scheme_len = strlen(rv.scheme);
	rv.uri = target_path(req->path ? req->path : "");
	rv.uri_len = strcspn(rv.uri, "?#");
	if (rv.uri[rv.uri_len] == '?') {
		rv.query = rv.uri + rv.uri_len + 1;
		rv.query_len = strcspn(rv.query, "#");
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct crule *cr = &r->rules[i];

		if (vs->http[i].action == BM_HTTP_DELEGATE)
			continue;
		if (!cr->n)
			return (int)i;
		for (size_t j = 0; j < cr->n; j++)
			if (entry_ok(r, &cr->m[j], &rv, port, caller_labels, caller_ns, gw)) {
				*entry = (int)j;
				return (int)i;
			}
	}
	return -1;
}

int bm_http_routes_match(const struct bm_http_routes *r, const struct bm_http_req *req,
			 uint16_t port, const struct bm_labels *caller_labels,
			 const char *caller_ns, const char *gateway)
{
	int entry;

	return bm_http_routes_match_entry(r, req, port, caller_labels, caller_ns, gateway, &entry);
}

/* ---- after the match ---- */

int bm_http_pick_dest(const struct bm_http_route *rt, uint32_t rnd)
{
	uint64_t total = 0, x, acc = 0;

	if (!rt->n_route)
		return -1;
	for (size_t i = 0; i < rt->n_route; i++)
		total += rt->route[i].weight;
	if (!total)
		return 0; /* one destination without weight (the loader refuses several at 0) */
	x = ((uint64_t)rnd * total) >> 32; /* uniform in [0, total) */
	for (size_t i = 0; i < rt->n_route; i++) {
		acc += rt->route[i].weight;
		if (x < acc)
			return (int)i;
	}
	return (int)rt->n_route - 1;
}

bool bm_http_chance(uint32_t ppm, uint32_t rnd)
{
	return (((uint64_t)rnd * 1000000) >> 32) < ppm;
}

int bm_http_rewrite_path(const struct bm_http_route *rt, int entry, const char *path, char *buf,
			 size_t len)
{
	const struct bm_string_match *u = NULL;
	const char *p = target_path(path);
	size_t plen = strcspn(p, "?#"), cut;
	int n;

	if (!rt->has_rewrite || !rt->rewrite.uri)
		return -1;
	if (entry >= 0 && (size_t)entry < rt->n_match)
		u = &rt->match[entry].uri;
	if (u && u->kind == BM_SM_PREFIX)
		cut = strlen(u->value) < plen ? strlen(u->value) : plen;
	else if (u && (u->kind == BM_SM_EXACT || u->kind == BM_SM_REGEX))
		cut = plen;
	else
		cut = p[0] == '/'; /* Envoy's implicit prefix "/" */
	n = snprintf(buf, len, "%s%s", rt->rewrite.uri, p + cut);
	return n < 0 || (size_t)n >= len ? -1 : n;
}
