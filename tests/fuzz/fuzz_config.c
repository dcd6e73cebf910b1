/* libFuzzer target for the config loader: any bytes as a manifest file must give diagnostics,
 * never a crash, a leak or undefined behaviour; the model and diags are then walked and freed. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

/* Touch what the loader produced so a dangling pointer or bad count shows up under ASan. */
static size_t walk(const struct bm_config *c)
{
	size_t sum = 0;
	char buf[64];

	for (size_t i = 0; i < c->n_diags; i++)
		sum += (size_t)c->diags[i].msg[0] + (size_t)c->diags[i].loc.line;
	for (size_t i = 0; i < c->n_services; i++) {
		const struct bm_service *s = &c->services[i];

		sum += s->meta.name[0] + s->meta.ns[0] + s->n_ports;
		for (size_t j = 0; j < s->n_cluster_ips; j++) {
			bm_ip_format(&s->cluster_ips[j], buf, sizeof(buf));
			sum += (size_t)buf[0];
		}
		for (size_t j = 0; j < s->n_ports; j++)
			sum += s->ports[j].port + (s->ports[j].name ? s->ports[j].name[0] : 0);
	}
	for (size_t i = 0; i < c->n_pods; i++)
		sum += bm_labels_match(&c->pods[i].meta.labels, &c->pods[i].meta.labels) +
		       c->pods[i].service_account[0];
	for (size_t i = 0; i < c->n_endpoints; i++)
		sum += c->endpoints[i].n_addrs + (c->endpoints[i].service ? c->endpoints[i].service[0] : 0);
	for (size_t i = 0; i < c->n_virtual_services; i++)
		for (size_t j = 0; j < c->virtual_services[i].n_tcp; j++)
			for (size_t k = 0; k < c->virtual_services[i].tcp[j].n_route; k++)
				sum += c->virtual_services[i].tcp[j].route[k].dest.host[0];
	for (size_t i = 0; i < c->n_destination_rules; i++)
		sum += c->destination_rules[i].host[0] + c->destination_rules[i].n_subsets;
	for (size_t i = 0; i < c->n_service_entries; i++)
		sum += c->service_entries[i].hosts[0][0] + c->service_entries[i].n_endpoints;
	for (size_t i = 0; i < c->n_workload_entries; i++)
		sum += c->workload_entries[i].n_ports;
	return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bm_config *c = bm_config_new();
	static volatile size_t sink;

	if (!c)
		return 0;
	bm_config_load_buf(c, "fuzz.yaml", (const char *)data, size);
	/* The same bytes twice: every resource is now a duplicate, exercising that path too. */
	if (size < 4096)
		bm_config_load_buf(c, "again.yaml", (const char *)data, size);
	sink = walk(c);
	bm_config_free(c);
	return 0;
}
