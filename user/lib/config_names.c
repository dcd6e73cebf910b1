/* Syntax of the names and addresses found in config: DNS labels and subdomains, Istio hosts,
 * port names, IP addresses (v4 stored v4-mapped) and label-selector matching. */
#include "config_internal.h"

#include <arpa/inet.h>
#include <string.h>

static bool lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

static bool label_n(const char *s, size_t len)
{
	if (len == 0 || len > 63 || !lower_alnum(s[0]) || !lower_alnum(s[len - 1]))
		return false;
	for (size_t i = 1; i + 1 < len; i++)
		if (!lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

bool bm_cfg_is_dns_label(const char *s)
{
	return label_n(s, strlen(s));
}

bool bm_cfg_is_dns1035_label(const char *s)
{
	return s[0] >= 'a' && s[0] <= 'z' && bm_cfg_is_dns_label(s);
}

bool bm_cfg_is_dns_subdomain(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 253)
		return false;
	for (const char *dot; (dot = strchr(s, '.')); s = dot + 1)
		if (!label_n(s, (size_t)(dot - s)))
			return false;
	return label_n(s, strlen(s));
}

bool bm_cfg_is_iana_svc_name(const char *s)
{
	size_t len = strlen(s);
	bool letter = false;

	if (!bm_cfg_is_dns_label(s) || len > 15 || strstr(s, "--"))
		return false;
	for (; *s; s++)
		letter |= *s >= 'a' && *s <= 'z';
	return letter;
}

/* A host as Istio writes them: "*", an IP address, or a DNS name (case-insensitive labels of
 * [A-Za-z0-9-]) whose first label may be "*" or start with "*". */
bool bm_cfg_is_hostname(const char *s)
{
	struct bm_ip ip;
	size_t len = strlen(s);

	if (!strcmp(s, "*") || !bm_ip_parse(s, &ip))
		return true;
	if (len == 0 || len > 255)
		return false;
	if (s[0] == '*') {
		s++;
		if (*s == '.')
			s++;
		if (!*s)
			return false;
	}
	for (;;) {
		const char *dot = strchr(s, '.');
		size_t n = dot ? (size_t)(dot - s) : strlen(s);

		if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
			return false;
		for (size_t i = 0; i < n; i++) {
			char ch = s[i];

			if (!lower_alnum(ch) && !(ch >= 'A' && ch <= 'Z') && ch != '-')
				return false;
		}
		if (!dot)
			return true;
		s = dot + 1;
	}
}

int bm_ip_parse(const char *s, struct bm_ip *out)
{
	struct in_addr a4;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(out->a, 0, 10);
		out->a[10] = 0xff;
		out->a[11] = 0xff;
		memcpy(out->a + 12, &a4, 4);
		return 0;
	}
	if (strchr(s, ':') && inet_pton(AF_INET6, s, out->a) == 1)
		return 0;
	return -1;
}

bool bm_ip_is_v4(const struct bm_ip *ip)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return !memcmp(ip->a, prefix, sizeof(prefix));
}

void bm_ip_format(const struct bm_ip *ip, char *buf, size_t len)
{
	char tmp[INET6_ADDRSTRLEN];
	const char *r;

	if (!len)
		return;
	if (bm_ip_is_v4(ip))
		r = inet_ntop(AF_INET, ip->a + 12, tmp, sizeof(tmp));
	else
		r = inet_ntop(AF_INET6, ip->a, tmp, sizeof(tmp));
	snprintf(buf, len, "%s", r ? tmp : "?");
}

const char *bm_labels_get(const struct bm_labels *l, const char *key)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(l->v[mid].key, key);

		if (!c)
			return l->v[mid].val;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

bool bm_labels_match(const struct bm_labels *selector, const struct bm_labels *labels)
{
	for (size_t i = 0; i < selector->n; i++) {
		const char *v = bm_labels_get(labels, selector->v[i].key);

		if (!v || strcmp(v, selector->v[i].val))
			return false;
	}
	return true;
}
