/* libFuzzer target for VirtualService http routes: a manifest and a request (split at the first
 * NUL byte) are loaded, compiled and matched; never a crash, a leak, or a broken invariant. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "http_match.h"

#define MAX_HDRS 32

/* The request part: lines method, path, authority, gateway, caller namespace, then "name:value"
 * headers (names lowercased, as the engine gives them). Empty gateway / namespace: NULL. */
struct fuzz_req {
	struct bm_http_req req;
	struct bm_http_hdr hdrs[MAX_HDRS];
	const char *gateway, *caller_ns;
	uint16_t port;
};

static char *next_line(char **s)
{
	char *line = *s, *nl;

	if (!line)
		return "";
	nl = strchr(line, '\n');
	if (nl) {
		*nl = '\0';
		*s = nl + 1;
	} else {
		*s = NULL;
	}
	return line;
}

static void parse_req(char *text, size_t len, struct fuzz_req *f)
{
	char *s = text, *line;

	memset(f, 0, sizeof(*f));
	f->port = len ? (uint16_t)(80 + (unsigned char)text[0] % 4 * 1000) : 80; /* 80, 1080, ... */
	f->req.method = next_line(&s);
	f->req.path = next_line(&s);
	f->req.authority = next_line(&s);
	f->req.scheme = "http";
	f->gateway = next_line(&s);
	f->caller_ns = next_line(&s);
	if (!f->gateway[0])
		f->gateway = NULL;
	if (!f->caller_ns[0])
		f->caller_ns = NULL;
	while (s && f->req.n_hdrs < MAX_HDRS) {
		char *colon;

		line = next_line(&s);
		colon = strchr(line, ':');
		if (!colon || colon == line)
			continue;
		*colon = '\0';
		for (char *c = line; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c += 'a' - 'A';
		f->hdrs[f->req.n_hdrs++] = (struct bm_http_hdr){ line, strlen(line), colon + 1,
								 strlen(colon + 1) };
	}
	f->req.hdrs = f->hdrs;
}

static void route_one(const struct bm_virtual_service *vs, const struct fuzz_req *f)
{
	static const struct bm_label lv[] = { { "app", "client" }, { "version", "v1" } };
	const struct bm_labels labels = { (struct bm_label *)lv, 2 };
	struct bm_http_routes *r = NULL;
	char err[256], buf[512];
	int rule, entry, d;

	/* The loader checked every regex with the matcher's own compiler: compiling cannot fail. */
	if (bm_http_routes_compile(vs, &r, err, sizeof(err)))
		abort();
	rule = bm_http_routes_match_entry(r, &f->req, f->port, f->caller_ns ? &labels : NULL,
					  f->caller_ns, f->gateway, &entry);
	if (rule >= (int)vs->n_http || rule < -1)
		abort();
	if (rule >= 0) {
		const struct bm_http_route *rt = &vs->http[rule];

		if (entry >= (int)rt->n_match || (rt->n_match && entry < 0) ||
		    rt->action == BM_HTTP_DELEGATE)
			abort();
		d = bm_http_pick_dest(rt, (uint32_t)f->req.n_hdrs * 2654435761u);
		if (d >= (int)rt->n_route || (rt->n_route && d < 0))
			abort();
		if (bm_http_rewrite_path(rt, entry, f->req.path, buf, sizeof(buf)) >= (int)sizeof(buf))
			abort();
		(void)bm_http_chance(rt->fault.abort_ppm, (uint32_t)rule);
	}
	bm_http_routes_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = memchr(data, '\0', size);
	size_t ylen = sep ? (size_t)(sep - data) : size;
	size_t rlen = sep ? size - ylen - 1 : 0;
	struct bm_config *c = bm_config_new();
	char *rtext = malloc(rlen + 1);
	struct fuzz_req f;

	if (!c || !rtext)
		goto out;
	memcpy(rtext, sep ? sep + 1 : data, rlen);
	rtext[rlen] = '\0';
	parse_req(rtext, rlen, &f);
	bm_config_load_buf(c, "fuzz.yaml", (const char *)data, ylen);
	for (size_t i = 0; i < c->n_virtual_services; i++)
		route_one(&c->virtual_services[i], &f);
out:
	bm_config_free(c);
	free(rtext);
	return 0;
}
