/* addr.c - how bm-echo names endpoints and itself: "ip:port" strings (IPv4-mapped shown as
 * a.b.c.d, IPv6 as [addr]:port), the raw/UDP identity line and the JSON identity prefix. */
#include "echo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bm_addr_format(const struct sockaddr *sa, char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN], ifname[IF_NAMESIZE + 1] = "";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(out, n, "%s:%u", ip, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], ip, sizeof(ip));
			snprintf(out, n, "%s:%u", ip, ntohs(sin6->sin6_port));
			return;
		}
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		if (sin6->sin6_scope_id && !if_indextoname(sin6->sin6_scope_id, ifname + 1))
			snprintf(ifname, sizeof(ifname), "%%%u", sin6->sin6_scope_id);
		else if (sin6->sin6_scope_id)
			ifname[0] = '%';
		snprintf(out, n, "[%s%s]:%u", ip, ifname, ntohs(sin6->sin6_port));
	} else {
		snprintf(out, n, "unknown");
	}
}

/* Appends "pod=.. namespace=.. node=.. version=.. server=.. client=..\n" to b. */
int bm_ident_line(struct bm_echo *e, struct bm_buf *b, const char *local, const char *peer)
{
	return bm_buf_printf(b, b->len + BM_ECHO_IDENT_MAX,
			     "pod=%s namespace=%s node=%s version=%s server=%s client=%s\n",
			     e->cfg.pod, e->cfg.ns, e->cfg.node, e->cfg.version, local, peer);
}

/* Builds the constant start of every JSON reply: pod, namespace, node, version, labels.
 * A later --label with the same key replaces an earlier one. */
int bm_ident_json_build(struct bm_echo *e)
{
	const struct bm_echo_cfg *cfg = &e->cfg;
	const char *names[] = { "pod", "namespace", "node", "version" };
	const char *values[] = { cfg->pod, cfg->ns, cfg->node, cfg->version };
	struct bm_buf b = { 0 };
	bool first = true;
	int err;

	for (size_t i = 0; i < 4; i++) {
		err = bm_buf_printf(&b, SIZE_MAX, "%s\"%s\":", i ? "," : "", names[i]);
		if (err)
			goto cleanup;
		err = bm_json_str(&b, SIZE_MAX, values[i], strlen(values[i]), false);
		if (err)
			goto cleanup;
	}
	err = bm_buf_printf(&b, SIZE_MAX, ",\"labels\":{");
	if (err)
		goto cleanup;
	for (size_t i = 0; i < cfg->nlabels; i++) {
		const struct bm_label *l = &cfg->labels[i];
		bool replaced = false;

		for (size_t j = i + 1; j < cfg->nlabels; j++)
			if (cfg->labels[j].key_len == l->key_len &&
			    !memcmp(cfg->labels[j].key, l->key, l->key_len))
				replaced = true;
		if (replaced)
			continue;
		if (!first && (err = bm_buf_append(&b, ",", 1, SIZE_MAX)))
			goto cleanup;
		first = false;
		err = bm_json_str(&b, SIZE_MAX, l->key, l->key_len, false);
		if (err)
			goto cleanup;
		err = bm_buf_append(&b, ":", 1, SIZE_MAX);
		if (err)
			goto cleanup;
		err = bm_json_str(&b, SIZE_MAX, l->value, strlen(l->value), false);
		if (err)
			goto cleanup;
	}
	err = bm_buf_append(&b, "}", 1, SIZE_MAX);
	if (err)
		goto cleanup;
	e->ident_json = b.data;
	e->ident_json_len = b.len;
	b.data = NULL;
cleanup:
	bm_buf_free(&b);
	return err;
}
