/* Unit tests of the config loader (user/lib/config*.c): every kind parsed into the model, the
 * shared examples, and bad input reported with the exact diagnostic line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

/* ---- helpers ---- */

static struct bm_config *load(const char *yaml)
{
	struct bm_config *c = bm_config_new();

	assert_non_null(c);
	assert_int_equal(bm_config_load_buf(c, "t.yaml", yaml, strlen(yaml)), 0);
	return c;
}

static void dump(const struct bm_config *c)
{
	fprintf(stderr, "--- %zu diagnostics, %zu errors:\n", c->n_diags, c->n_errors);
	bm_config_print_diags(c, stderr);
}

static bool has_diag(const struct bm_config *c, const char *line)
{
	for (size_t i = 0; i < c->n_diags; i++)
		if (!strcmp(c->diags[i].msg, line))
			return true;
	return false;
}

static size_t count_level(const struct bm_config *c, enum bm_diag_level lvl)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_diags; i++)
		n += c->diags[i].level == lvl;
	return n;
}

/* Named checks: on failure say what was checked and show the diagnostics. */
#define CHECK(c, cond, what)                                            \
	do {                                                            \
		if (!(cond)) {                                          \
			dump(c);                                        \
			fail_msg("%s (failed: %s)", what, #cond);       \
		}                                                       \
	} while (0)
#define CHECK_DIAG(c, line) CHECK(c, has_diag(c, line), "diagnostic: " line)
#define CHECK_ERRORS(c, n, what) CHECK(c, (c)->n_errors == (n), what)

static void ipstr(const struct bm_ip *ip, char *buf)
{
	bm_ip_format(ip, buf, 64);
}

/* The repo's examples/ (verbatim copies of the seed and Istio samples): $BM_EXAMPLES, else
 * examples/ relative to the repo root, where tests/run.sh runs the tests from. */
static const char *examples_dir(void)
{
	static char dir[512];
	const char *env = getenv("BM_EXAMPLES");
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", env ? env : "examples");
	return stat(dir, &st) == 0 ? dir : NULL;
}

/* ---- Kubernetes kinds ---- */

static void test_namespace(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: v1\n"
				   "kind: Namespace\n"
				   "metadata:\n"
				   "  name: prod\n"
				   "  labels: {istio-injection: enabled, team: a}\n");

	CHECK_ERRORS(c, 0, "a good Namespace has no error");
	CHECK(c, c->n_namespaces == 1, "the Namespace is in the model");
	CHECK(c, !strcmp(c->namespaces[0].meta.name, "prod"), "name read");
	CHECK(c, !strcmp(c->namespaces[0].meta.ns, ""), "a Namespace has no namespace");
	CHECK(c, c->namespaces[0].meta.labels.n == 2, "two labels");
	CHECK(c, !strcmp(bm_labels_get(&c->namespaces[0].meta.labels, "team"), "a"), "label value");
	CHECK(c, c->namespaces[0].meta.loc.line == 1, "resource location is its first line");
	bm_config_free(c);
}

static void test_service_good(void **state)
{
	(void)state;
	char buf[64];
	struct bm_config *c = load("apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata: {name: web, namespace: prod, uid: u-1}\n"
				   "spec:\n"
				   "  type: ClusterIP\n"
				   "  clusterIP: 10.96.0.10\n"
				   "  clusterIPs: [10.96.0.10, \"fd00::10\"]\n"
				   "  ipFamilies: [IPv4, IPv6]\n"
				   "  ipFamilyPolicy: PreferDualStack\n"
				   "  sessionAffinity: None\n"
				   "  internalTrafficPolicy: Cluster\n"
				   "  ports:\n"
				   "  - name: http\n"
				   "    port: 80\n"
				   "    targetPort: 8080\n"
				   "    appProtocol: http\n"
				   "  - name: dns\n"
				   "    port: 53\n"
				   "    protocol: UDP\n"
				   "    targetPort: dns-port\n"
				   "  - name: same\n"
				   "    port: 90\n"
				   "  selector: {app: web}\n"
				   "status: {loadBalancer: {}}\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata: {name: db}\n"
				   "spec: {clusterIP: None, selector: {}}\n");
	const struct bm_service *s;

	CHECK_ERRORS(c, 0, "good Services have no error");
	CHECK(c, c->n_diags == 0, "nothing to report at all");
	CHECK(c, c->n_services == 2, "both Services in the model");
	s = &c->services[0];
	CHECK(c, !strcmp(s->meta.ns, "prod") && !strcmp(s->meta.uid, "u-1"), "namespace and uid");
	CHECK(c, s->n_cluster_ips == 2 && !s->headless, "dual-stack cluster IPs");
	ipstr(&s->cluster_ips[0], buf);
	CHECK(c, !strcmp(buf, "10.96.0.10"), "IPv4 cluster IP printed as a.b.c.d");
	ipstr(&s->cluster_ips[1], buf);
	CHECK(c, !strcmp(buf, "fd00::10"), "IPv6 cluster IP");
	CHECK(c, s->n_ports == 3, "three ports");
	CHECK(c, s->ports[0].port == 80 && s->ports[0].target_port == 8080 &&
			 s->ports[0].proto == BM_PROTO_TCP && !strcmp(s->ports[0].app_protocol, "http"),
	      "port 80 -> 8080 TCP, appProtocol http");
	CHECK(c, s->ports[1].proto == BM_PROTO_UDP && s->ports[1].target_port == 0 &&
			 !strcmp(s->ports[1].target_name, "dns-port"),
	      "named targetPort kept as a name");
	CHECK(c, s->ports[2].target_port == 90 && !s->ports[2].target_name,
	      "targetPort defaults to port");
	CHECK(c, s->ports[2].loc.line == 21, "port location is its list item");
	CHECK(c, s->has_selector && !strcmp(bm_labels_get(&s->selector, "app"), "web"), "selector");
	s = &c->services[1];
	CHECK(c, s->headless && s->n_cluster_ips == 0, "clusterIP None is headless");
	CHECK(c, !strcmp(s->meta.ns, "default"), "namespace defaults to default");
	CHECK(c, s->has_selector && s->selector.n == 0, "empty selector is present");
	CHECK(c, s->meta.loc.line == 26, "second document's location");
	bm_config_free(c);
}

static void test_service_unsupported(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata: {name: web}\n"
				   "spec:\n"
				   "  type: NodePort\n"
				   "  clusterIP: 10.96.0.11\n"
				   "  sessionAffinity: ClientIP\n"
				   "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 10}}\n"
				   "  externalTrafficPolicy: Local\n"
				   "  publishNotReadyAddresses: true\n"
				   "  ports:\n"
				   "  - port: 80\n"
				   "    nodePort: 30080\n"
				   "  externalIPs: [1.2.3.4]\n"
				   "foo: bar\n");

	CHECK_ERRORS(c, 0, "unsupported is not an error");
	CHECK(c, c->n_services == 1, "the ClusterIP part of a NodePort Service is kept");
	CHECK(c, c->services[0].n_cluster_ips == 1 && c->services[0].ports[0].port == 80,
	      "cluster IP and port kept");
	CHECK_DIAG(c, "unsupported: Service/spec.type=NodePort at t.yaml:5");
	CHECK_DIAG(c, "unsupported: Service/spec.sessionAffinity=ClientIP at t.yaml:7");
	CHECK_DIAG(c, "unsupported: Service/spec.sessionAffinityConfig at t.yaml:8");
	CHECK_DIAG(c, "unsupported: Service/spec.externalTrafficPolicy=Local at t.yaml:9");
	CHECK_DIAG(c, "unsupported: Service/spec.publishNotReadyAddresses=true at t.yaml:10");
	CHECK_DIAG(c, "unsupported: Service/spec.ports[0].nodePort at t.yaml:13");
	CHECK_DIAG(c, "unsupported: Service/spec.externalIPs at t.yaml:14");
	CHECK_DIAG(c, "unsupported: Service/foo at t.yaml:15");
	CHECK(c, count_level(c, BM_DIAG_UNSUPPORTED) == 8, "exactly those eight");
	bm_config_free(c);
}

static void test_service_bad_ports(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata: {name: web}\n"
				   "spec:\n"
				   "  ports:\n"
				   "  - {name: a, port: \"80\"}\n"
				   "  - {name: b, port: 0}\n"
				   "  - {name: c, port: 70000}\n"
				   "  - {name: d, port: 81, targetPort: \"8080\"}\n"
				   "  - {name: a, port: 82, protocol: QUIC}\n"
				   "  - {name: f, port: 83, targetPort: 0}\n"
				   "  - {name: g, port: 83}\n"
				   "  - {port: 84}\n"
				   "  - {name: i, port: 85.0}\n"
				   "  - {name: j, port: 080}\n"
				   "  - {name: k, port: [1]}\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata: {name: ok}\n"
				   "spec: {ports: [{port: 1}]}\n");

	CHECK(c, c->n_services == 1 && !strcmp(c->services[0].meta.name, "ok"),
	      "the bad Service is left out, the good one kept");
	CHECK_DIAG(c, "error: t.yaml:6: Service default/web: spec.ports[0].port: expected an "
		      "integer, got the quoted string \"80\"");
	CHECK_DIAG(c, "error: t.yaml:7: Service default/web: spec.ports[1].port: 0 is out of "
		      "range 1..65535");
	CHECK_DIAG(c, "error: t.yaml:8: Service default/web: spec.ports[2].port: 70000 is out of "
		      "range 1..65535");
	CHECK_DIAG(c, "error: t.yaml:9: Service default/web: spec.ports[3].targetPort: \"8080\" is "
		      "not a port number (write it unquoted) nor a port name (IANA service name: "
		      "[a-z0-9-], a letter, at most 15)");
	CHECK_DIAG(c, "error: t.yaml:10: Service default/web: spec.ports[4].protocol: \"QUIC\" is "
		      "not one of TCP, UDP, SCTP");
	CHECK_DIAG(c, "error: t.yaml:10: Service default/web: spec.ports[4].name: \"a\" used twice "
		      "(also line 6)");
	CHECK_DIAG(c, "error: t.yaml:11: Service default/web: spec.ports[5].targetPort: 0 is out "
		      "of range 1..65535");
	CHECK_DIAG(c, "error: t.yaml:12: Service default/web: spec.ports[6]: port 83/TCP used "
		      "twice (also line 11)");
	CHECK_DIAG(c, "error: t.yaml:13: Service default/web: spec.ports[7].name: required when a "
		      "Service has several ports");
	CHECK_DIAG(c, "error: t.yaml:14: Service default/web: spec.ports[8].port: expected an "
		      "integer, got the number 85.0");
	CHECK_DIAG(c, "error: t.yaml:15: Service default/web: spec.ports[9].port: expected a "
		      "decimal integer, got 080");
	CHECK_DIAG(c, "error: t.yaml:16: Service default/web: spec.ports[10].port: expected an "
		      "integer, got a list");
	CHECK_ERRORS(c, 12, "twelve errors, one per problem");
	bm_config_free(c);
}

static void test_service_cluster_ips(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata: {name: a}\n"
				   "spec:\n"
				   "  clusterIP: 10.0.0.1\n"
				   "  clusterIPs: [10.0.0.2]\n"
				   "  ports: [{port: 1}]\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata: {name: b}\n"
				   "spec:\n"
				   "  clusterIPs: [10.0.0.1, 10.0.0.2]\n"
				   "  ports: [{port: 1}]\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata: {name: c}\n"
				   "spec:\n"
				   "  clusterIP: 300.1.1.1\n"
				   "  ports: [{port: 1}]\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata: {name: d}\n"
				   "spec: {clusterIP: \"\", ports: [{port: 1}]}\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata: {name: e}\n"
				   "spec: {clusterIP: 10.0.0.5}\n");

	CHECK_DIAG(c, "error: t.yaml:6: Service default/a: spec.clusterIPs[0]: \"10.0.0.2\" differs "
		      "from spec.clusterIP \"10.0.0.1\"");
	CHECK_DIAG(c, "error: t.yaml:13: Service default/b: spec.clusterIPs[1]: a second address "
		      "of the same family");
	CHECK_DIAG(c, "error: t.yaml:20: Service default/c: spec.clusterIP: \"300.1.1.1\" is not an "
		      "IP address");
	CHECK_DIAG(c, "error: t.yaml:31: Service default/e: spec.ports: required (only a headless "
		      "Service may have none)");
	CHECK_ERRORS(c, 4, "four errors");
	CHECK(c, c->n_services == 1 && !strcmp(c->services[0].meta.name, "d") &&
			 c->services[0].n_cluster_ips == 0 && !c->services[0].headless,
	      "clusterIP \"\" is no address and not headless");
	bm_config_free(c);
}

static void test_pod(void **state)
{
	(void)state;
	char buf[64];
	struct bm_config *c = load("apiVersion: v1\n"
				   "kind: Pod\n"
				   "metadata: {name: web-1, namespace: prod, labels: {app: web}}\n"
				   "spec:\n"
				   "  nodeName: node-a\n"
				   "  serviceAccountName: web-sa\n"
				   "  containers:\n"
				   "  - name: app\n"
				   "    image: example/web:1\n"
				   "    command: [/bin/web]\n"
				   "    resources: {requests: {cpu: 100m}}\n"
				   "    ports:\n"
				   "    - {containerPort: 8080, name: http}\n"
				   "    - {containerPort: 53, protocol: UDP}\n"
				   "  - name: side\n"
				   "    ports: [{containerPort: 9090, name: metrics}]\n"
				   "  volumes: [{name: v, emptyDir: {}}]\n"
				   "status:\n"
				   "  phase: Running\n"
				   "  podIP: 10.1.0.5\n"
				   "  podIPs: [{ip: 10.1.0.5}, {ip: \"fd00::5\"}]\n"
				   "  conditions: [{type: Ready, status: \"True\"}]\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Pod\n"
				   "metadata: {name: old-sa}\n"
				   "spec: {serviceAccount: legacy, hostNetwork: true}\n"
				   "status:\n"
				   "  phase: Running\n"
				   "  podIP: 10.1.0.6\n"
				   "  conditions: [{type: Ready, status: \"False\"}]\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Pod\n"
				   "metadata: {name: pending}\n"
				   "status: {phase: Pending}\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Pod\n"
				   "metadata: {name: no-conditions}\n"
				   "status: {phase: Running, podIP: 10.1.0.8}\n");
	const struct bm_pod *p;

	CHECK_ERRORS(c, 0, "good Pods");
	CHECK(c, c->n_diags == 0, "workload fields are accepted silently");
	CHECK(c, c->n_pods == 4, "four Pods");
	p = &c->pods[0];
	CHECK(c, !strcmp(p->node_name, "node-a") && !strcmp(p->service_account, "web-sa"),
	      "nodeName and serviceAccountName");
	CHECK(c, p->n_ips == 2 && p->ready && !p->host_network, "two IPs, ready");
	ipstr(&p->ips[1], buf);
	CHECK(c, !strcmp(buf, "fd00::5"), "second pod IP");
	CHECK(c, p->n_ports == 3, "ports of all containers");
	CHECK(c, p->ports[0].port == 8080 && !strcmp(p->ports[0].name, "http") &&
			 p->ports[1].proto == BM_PROTO_UDP && !p->ports[1].name &&
			 !strcmp(p->ports[2].name, "metrics"),
	      "container ports read");
	p = &c->pods[1];
	CHECK(c, !strcmp(p->service_account, "legacy") && p->host_network, "serviceAccount alias");
	CHECK(c, !p->ready && p->n_ips == 1, "Ready=False is not ready");
	CHECK(c, !c->pods[2].ready && !strcmp(c->pods[2].service_account, "default"),
	      "Pending is not ready; service account defaults to default");
	CHECK(c, c->pods[3].ready, "Running without conditions is ready");
	bm_config_free(c);
}

static void test_pod_bad(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: v1\n"
				   "kind: Pod\n"
				   "metadata: {name: p}\n"
				   "spec:\n"
				   "  hostNetwork: yes\n"
				   "  containers: {name: x}\n"
				   "status:\n"
				   "  podIP: 10.0.0.1\n"
				   "  podIPs: [{ip: 10.0.0.2}]\n"
				   "extra: 1\n");

	CHECK(c, c->n_pods == 0, "a Pod with errors is left out");
	CHECK_DIAG(c, "error: t.yaml:5: Pod default/p: spec.hostNetwork: expected true or false, "
		      "got yes");
	CHECK_DIAG(c, "error: t.yaml:6: Pod default/p: spec.containers: expected a list, got a map");
	CHECK_DIAG(c, "error: t.yaml:9: Pod default/p: status.podIPs[0].ip: differs from "
		      "status.podIP");
	CHECK_DIAG(c, "unsupported: Pod/extra at t.yaml:10");
	CHECK_ERRORS(c, 3, "three errors");
	bm_config_free(c);
}

static void test_endpoints(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: v1\n"
				   "kind: Endpoints\n"
				   "metadata: {name: web, namespace: prod, labels: {app: web}}\n"
				   "subsets:\n"
				   "- addresses:\n"
				   "  - ip: 10.1.0.1\n"
				   "    nodeName: n1\n"
				   "    targetRef: {kind: Pod, name: web-1, namespace: prod}\n"
				   "  notReadyAddresses:\n"
				   "  - ip: 10.1.0.2\n"
				   "  ports: [{name: http, port: 8080}]\n"
				   "- addresses: [{ip: \"fd00::1\", targetRef: {kind: Node, name: node-1}}]\n"
				   "  ports: [{port: 9090, protocol: UDP}]\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Endpoints\n"
				   "metadata: {name: empty}\n");
	const struct bm_endpoints *e;

	CHECK_ERRORS(c, 0, "good Endpoints");
	CHECK(c, c->n_endpoints == 3, "one entry per subset, and one for no subset");
	e = &c->endpoints[0];
	CHECK(c, !e->is_slice && !strcmp(e->service, "web") && !strcmp(e->meta.ns, "prod"),
	      "service is metadata.name");
	CHECK(c, e->n_addrs == 2 && e->addrs[0].ready && !e->addrs[1].ready,
	      "notReadyAddresses are not ready");
	CHECK(c, !strcmp(e->addrs[0].node_name, "n1") && !strcmp(e->addrs[0].pod_name, "web-1"),
	      "nodeName and Pod targetRef");
	CHECK(c, e->n_ports == 1 && e->ports[0].port == 8080 && !strcmp(e->ports[0].name, "http"),
	      "subset ports");
	e = &c->endpoints[1];
	CHECK(c, e->n_addrs == 1 && !e->addrs[0].pod_name && e->ports[0].proto == BM_PROTO_UDP &&
			 !strcmp(bm_labels_get(&e->meta.labels, "app"), "web"),
	      "second subset has its own ports, a Node targetRef gives no pod, meta copied");
	CHECK(c, c->endpoints[2].n_addrs == 0 && !strcmp(c->endpoints[2].service, "empty"),
	      "Endpoints without subsets");
	bm_config_free(c);
}

static void test_endpoint_slice(void **state)
{
	(void)state;
	char buf[64];
	struct bm_config *c = load("apiVersion: discovery.k8s.io/v1\n"
				   "kind: EndpointSlice\n"
				   "metadata:\n"
				   "  name: web-abc\n"
				   "  labels: {kubernetes.io/service-name: web}\n"
				   "addressType: IPv4\n"
				   "endpoints:\n"
				   "- addresses: [10.1.0.1, 10.1.0.9]\n"
				   "  conditions: {ready: true, serving: true, terminating: false}\n"
				   "  nodeName: n1\n"
				   "  targetRef: {kind: Pod, name: web-1}\n"
				   "  zone: a\n"
				   "- addresses: [10.1.0.2]\n"
				   "  conditions: {ready: false}\n"
				   "- addresses: [10.1.0.3]\n"
				   "ports:\n"
				   "- {name: http, port: 8080, protocol: TCP, appProtocol: http}\n"
				   "- {name: all}\n"
				   "---\n"
				   "apiVersion: discovery.k8s.io/v1beta1\n"
				   "kind: EndpointSlice\n"
				   "metadata: {name: ext, labels: {kubernetes.io/service-name: ext}}\n"
				   "addressType: FQDN\n"
				   "endpoints: [{addresses: [a.example.com]}]\n"
				   "---\n"
				   "apiVersion: discovery.k8s.io/v1\n"
				   "kind: EndpointSlice\n"
				   "metadata: {name: bad}\n"
				   "addressType: IPv6\n"
				   "endpoints: [{addresses: [10.0.0.1]}, {addresses: []}]\n");
	const struct bm_endpoints *e;

	CHECK(c, c->n_endpoints == 1, "only the good slice is in the model");
	e = &c->endpoints[0];
	CHECK(c, e->is_slice && !strcmp(e->service, "web"), "service from kubernetes.io/service-name");
	CHECK(c, e->n_addrs == 3, "one address per endpoint");
	ipstr(&e->addrs[0].ip, buf);
	CHECK(c, !strcmp(buf, "10.1.0.1"), "the first address of an endpoint is used");
	CHECK(c, e->addrs[0].ready && !e->addrs[1].ready && e->addrs[2].ready,
	      "ready condition, absent means ready");
	CHECK(c, !strcmp(e->addrs[0].pod_name, "web-1") && !strcmp(e->addrs[0].node_name, "n1"),
	      "targetRef and nodeName");
	CHECK(c, e->n_ports == 1 && e->ports[0].port == 8080, "the port without number is left out");
	CHECK_DIAG(c, "unsupported: EndpointSlice/ports[1].port at t.yaml:18 (absent port means all "
		      "ports)");
	CHECK_DIAG(c, "unsupported: EndpointSlice/addressType=FQDN at t.yaml:23");
	CHECK_DIAG(c, "error: t.yaml:28: EndpointSlice default/bad: metadata.labels: "
		      "\"kubernetes.io/service-name\" is required (the Service the slice belongs to)");
	CHECK_DIAG(c, "error: t.yaml:30: EndpointSlice default/bad: endpoints[0].addresses[0]: not "
		      "an IPv6 address (addressType)");
	CHECK_DIAG(c, "error: t.yaml:30: EndpointSlice default/bad: endpoints[1].addresses: at "
		      "least one address is required");
	CHECK_ERRORS(c, 3, "three errors, all in the bad slice");
	bm_config_free(c);
}

/* ---- Istio kinds ---- */

static void test_workload_entry(void **state)
{
	(void)state;
	char buf[64];
	struct bm_config *c = load("apiVersion: networking.istio.io/v1\n"
				   "kind: WorkloadEntry\n"
				   "metadata: {name: vm1, namespace: vms, labels: {meta: yes-label}}\n"
				   "spec:\n"
				   "  address: 10.2.2.2\n"
				   "  ports: {http: 8080, grpc: 9090}\n"
				   "  labels: {app: vm, version: v1}\n"
				   "  serviceAccount: vm-sa\n"
				   "  weight: 5\n"
				   "  network: net1\n"
				   "  locality: us-east/zone1\n"
				   "---\n"
				   "apiVersion: networking.istio.io/v1beta1\n"
				   "kind: WorkloadEntry\n"
				   "metadata: {name: vm2}\n"
				   "spec: {address: vm2.example.com}\n");
	const struct bm_workload_entry *w;

	CHECK_ERRORS(c, 0, "good WorkloadEntries");
	CHECK(c, c->n_workload_entries == 1, "the DNS-addressed entry is left out");
	w = &c->workload_entries[0];
	ipstr(&w->address, buf);
	CHECK(c, w->has_address && !strcmp(buf, "10.2.2.2"), "address");
	CHECK(c, w->n_ports == 2 && !strcmp(w->ports[1].name, "grpc") && w->ports[1].port == 9090,
	      "ports map");
	CHECK(c, !strcmp(bm_labels_get(&w->labels, "version"), "v1") &&
			 !bm_labels_get(&w->labels, "meta"),
	      "spec.labels, not metadata.labels");
	CHECK(c, !strcmp(w->service_account, "vm-sa") && w->weight == 5, "serviceAccount, weight");
	CHECK_DIAG(c, "unsupported: WorkloadEntry/spec.address=vm2.example.com at t.yaml:16");
	bm_config_free(c);
}

static void test_service_entry(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: networking.istio.io/v1\n"
				   "kind: ServiceEntry\n"
				   "metadata: {name: ext, namespace: web}\n"
				   "spec:\n"
				   "  hosts: [api.example.com, \"*.example.org\"]\n"
				   "  addresses: [240.0.0.1, 10.0.0.0/24, 10.0.0.9/32]\n"
				   "  ports:\n"
				   "  - {number: 443, name: https, protocol: HTTPS}\n"
				   "  - {number: 53, name: dns, protocol: udp, targetPort: 5353}\n"
				   "  - {number: 6379, name: redis}\n"
				   "  location: MESH_INTERNAL\n"
				   "  resolution: STATIC\n"
				   "  endpoints:\n"
				   "  - address: 10.1.1.1\n"
				   "    ports: {https: 8443}\n"
				   "    labels: {app: x}\n"
				   "    weight: 3\n"
				   "  exportTo: [\"*\"]\n"
				   "---\n"
				   "apiVersion: networking.istio.io/v1beta1\n"
				   "kind: ServiceEntry\n"
				   "metadata: {name: dns}\n"
				   "spec:\n"
				   "  hosts: [api.example.com]\n"
				   "  ports: [{number: 443, name: tls, protocol: TLS}]\n"
				   "  resolution: DNS\n"
				   "  endpoints: [{address: foo.example.com}]\n"
				   "---\n"
				   "apiVersion: networking.istio.io/v1alpha3\n"
				   "kind: ServiceEntry\n"
				   "metadata: {name: sel}\n"
				   "spec:\n"
				   "  hosts: [db.internal]\n"
				   "  ports: [{number: 5432, name: pg, protocol: TCP}]\n"
				   "  workloadSelector: {labels: {app: db}}\n"
				   "  subjectAltNames: [spiffe://x]\n"
				   "  exportTo: [\".\"]\n");
	const struct bm_service_entry *se;
	char buf[64];

	CHECK_ERRORS(c, 0, "good ServiceEntries");
	CHECK(c, c->n_service_entries == 2, "the DNS one is left out");
	se = &c->service_entries[0];
	CHECK(c, se->n_hosts == 2 && !strcmp(se->hosts[1], "*.example.org"), "hosts");
	CHECK(c, se->n_addresses == 2, "a /32 counts as an address, the /24 is left out");
	ipstr(&se->addresses[1], buf);
	CHECK(c, !strcmp(buf, "10.0.0.9"), "the /32 address");
	CHECK(c, se->n_ports == 3 && se->ports[1].proto == BM_PROTO_UDP &&
			 !strcmp(se->ports[1].protocol, "udp") && se->ports[1].target_port == 5353,
	      "udp port, protocol as written, targetPort");
	CHECK(c, se->ports[0].proto == BM_PROTO_TCP && !se->ports[2].protocol &&
			 se->ports[2].proto == BM_PROTO_TCP,
	      "HTTPS and unset protocol are TCP");
	CHECK(c, se->location == BM_LOC_INTERNAL && se->resolution == BM_RES_STATIC,
	      "location and resolution");
	CHECK(c, se->n_endpoints == 1 && se->endpoints[0].has_address &&
			 se->endpoints[0].ports[0].port == 8443 && se->endpoints[0].weight == 3 &&
			 !strcmp(se->endpoints[0].meta.ns, "web") && !se->endpoints[0].meta.name,
	      "inline endpoint");
	se = &c->service_entries[1];
	CHECK(c, se->has_workload_selector &&
			 !strcmp(bm_labels_get(&se->workload_selector, "app"), "db") &&
			 se->location == BM_LOC_EXTERNAL && se->resolution == BM_RES_NONE,
	      "workloadSelector; defaults MESH_EXTERNAL and NONE");
	CHECK_DIAG(c, "unsupported: ServiceEntry/spec.addresses[1]=10.0.0.0/24 at t.yaml:6");
	CHECK_DIAG(c, "unsupported: ServiceEntry/spec.resolution=DNS at t.yaml:26");
	CHECK_DIAG(c, "unsupported: ServiceEntry/spec.subjectAltNames at t.yaml:36");
	CHECK_DIAG(c, "unsupported: ServiceEntry/spec.exportTo at t.yaml:37");
	bm_config_free(c);
}

static void test_service_entry_bad(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: networking.istio.io/v1\n"
				   "kind: ServiceEntry\n"
				   "metadata: {name: ext}\n"
				   "spec:\n"
				   "  hosts: [\"*\"]\n"
				   "  addresses: [\"1.2.3.4/33\", nonsense]\n"
				   "  ports:\n"
				   "  - {number: 443, name: https, protocol: HTTPS}\n"
				   "  - {number: 443, name: https, protocol: FOO}\n"
				   "  resolution: STATIC\n"
				   "  endpoints:\n"
				   "  - {address: 10.1.1.1, ports: {nope: 1}}\n"
				   "  - {address: foo.example.com}\n"
				   "---\n"
				   "apiVersion: networking.istio.io/v1\n"
				   "kind: ServiceEntry\n"
				   "metadata: {name: none}\n"
				   "spec:\n"
				   "  hosts: [a.example.com]\n"
				   "  endpoints: [{address: 10.0.0.1}]\n");

	CHECK(c, c->n_service_entries == 0, "both left out");
	CHECK_DIAG(c, "error: t.yaml:5: ServiceEntry default/ext: spec.hosts[0]: \"*\" is not a "
		      "valid host (a DNS name, optionally with a \"*.\" prefix)");
	CHECK_DIAG(c, "error: t.yaml:6: ServiceEntry default/ext: spec.addresses[0]: \"1.2.3.4/33\" "
		      "is not an IP address or CIDR");
	CHECK_DIAG(c, "error: t.yaml:6: ServiceEntry default/ext: spec.addresses[1]: \"nonsense\" is "
		      "not an IP address or CIDR");
	CHECK_DIAG(c, "error: t.yaml:9: ServiceEntry default/ext: spec.ports[1].protocol: \"FOO\" is "
		      "not an Istio protocol (HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, HTTP_PROXY, TCP, TLS, "
		      "MONGO, MYSQL, REDIS, UDP)");
	CHECK_DIAG(c, "error: t.yaml:9: ServiceEntry default/ext: spec.ports[1]: port number 443 "
		      "used twice (also line 8)");
	CHECK_DIAG(c, "error: t.yaml:9: ServiceEntry default/ext: spec.ports[1]: port name "
		      "\"https\" used twice (also line 8)");
	CHECK_DIAG(c, "error: t.yaml:12: ServiceEntry default/ext: spec.endpoints[0].ports: \"nope\" "
		      "is not a port name of this ServiceEntry");
	CHECK_DIAG(c, "error: t.yaml:13: ServiceEntry default/ext: spec.endpoints[1].address: "
		      "\"foo.example.com\" is not an IP address (a STATIC ServiceEntry needs IP "
		      "endpoints)");
	CHECK_DIAG(c, "error: t.yaml:20: ServiceEntry default/none: spec.endpoints: not allowed with "
		      "resolution NONE (use STATIC)");
	CHECK_ERRORS(c, 9, "nine errors");
	bm_config_free(c);
}

static void test_destination_rule(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: networking.istio.io/v1\n"
				   "kind: DestinationRule\n"
				   "metadata: {name: backend, namespace: prod}\n"
				   "spec:\n"
				   "  host: backend.prod.svc.cluster.local\n"
				   "  trafficPolicy:\n"
				   "    loadBalancer:\n"
				   "      consistentHash: {useSourceIp: true}\n"
				   "    portLevelSettings:\n"
				   "    - port: {number: 80}\n"
				   "      loadBalancer: {simple: LEAST_CONN}\n"
				   "    - port: {number: 81}\n"
				   "      loadBalancer: {simple: UNSPECIFIED}\n"
				   "    connectionPool: {tcp: {maxConnections: 1}}\n"
				   "  subsets:\n"
				   "  - name: v1\n"
				   "    labels: {version: v1}\n"
				   "    trafficPolicy:\n"
				   "      loadBalancer: {simple: RANDOM}\n"
				   "      outlierDetection: {consecutive5xxErrors: 1}\n"
				   "  - name: v2\n"
				   "    labels: {version: v2}\n"
				   "  exportTo: [\"*\"]\n");
	const struct bm_destination_rule *d;

	CHECK_ERRORS(c, 0, "a good DestinationRule");
	CHECK(c, c->n_destination_rules == 1, "in the model");
	d = &c->destination_rules[0];
	CHECK(c, !strcmp(d->host, "backend.prod.svc.cluster.local"), "host as written");
	CHECK(c, d->policy.lb.set && d->policy.lb.hash_source_ip && d->policy.lb.loc.line == 7,
	      "consistentHash.useSourceIp at the loadBalancer line");
	CHECK(c, d->policy.n_ports == 2 && d->policy.ports[0].port == 80 &&
			 d->policy.ports[0].lb.simple == BM_LBS_LEAST_REQUEST,
	      "LEAST_CONN is LEAST_REQUEST");
	CHECK(c, d->policy.ports[1].lb.set && d->policy.ports[1].lb.simple == BM_LBS_UNSET,
	      "UNSPECIFIED is unset");
	CHECK(c, d->n_subsets == 2 && !strcmp(d->subsets[0].name, "v1") &&
			 !strcmp(bm_labels_get(&d->subsets[0].labels, "version"), "v1") &&
			 d->subsets[0].policy.lb.simple == BM_LBS_RANDOM && !d->subsets[1].policy.lb.set,
	      "subsets with labels and policies");
	CHECK(c, d->subsets[1].loc.line == 21, "subset location");
	CHECK(c, d->policy.pool.set && d->policy.pool.max_connections == 1 &&
			 d->policy.pool.loc.line == 14 && !d->policy.pool.max_pending,
	      "connectionPool.tcp.maxConnections read, the rest unlimited");
	CHECK(c, d->subsets[0].policy.outlier.set &&
			 d->subsets[0].policy.outlier.consecutive_5xx == 1 &&
			 d->subsets[0].policy.outlier.interval_ms == 10000 &&
			 d->subsets[0].policy.outlier.base_ejection_ms == 30000 &&
			 d->subsets[0].policy.outlier.max_ejection_pct == 10 &&
			 !d->subsets[1].policy.outlier.set,
	      "the subset's outlierDetection, Envoy's defaults for what it leaves out");
	CHECK(c, count_level(c, BM_DIAG_UNSUPPORTED) == 0, "nothing unsupported");
	bm_config_free(c);
}

static void test_destination_rule_bad(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: networking.istio.io/v1\n"
				   "kind: DestinationRule\n"
				   "metadata: {name: dr}\n"
				   "spec:\n"
				   "  workloadSelector: {matchLabels: {a: b}}\n"
				   "  trafficPolicy:\n"
				   "    loadBalancer:\n"
				   "      simple: FASTEST\n"
				   "      consistentHash: {useSourceIp: true, httpHeaderName: x}\n"
				   "      localityLbSetting: {enabled: true}\n"
				   "    tls: {mode: ISTIO_MUTUAL}\n"
				   "    portLevelSettings:\n"
				   "    - loadBalancer: {simple: RANDOM}\n"
				   "  subsets:\n"
				   "  - name: v1\n"
				   "  - name: v1\n"
				   "  - labels: {a: b}\n"
				   "  - name: V2\n"
				   "  - [not, a, map]\n");

	CHECK(c, c->n_destination_rules == 0, "left out");
	CHECK_DIAG(c, "error: t.yaml:5: DestinationRule default/dr: spec.host: required");
	CHECK_DIAG(c, "error: t.yaml:8: DestinationRule default/dr: "
		      "spec.trafficPolicy.loadBalancer.simple: \"FASTEST\" is not one of UNSPECIFIED, "
		      "ROUND_ROBIN, RANDOM, LEAST_REQUEST, LEAST_CONN, PASSTHROUGH");
	CHECK_DIAG(c, "error: t.yaml:9: DestinationRule default/dr: spec.trafficPolicy.loadBalancer: "
		      "simple and consistentHash are exclusive");
	CHECK_DIAG(c, "error: t.yaml:13: DestinationRule default/dr: "
		      "spec.trafficPolicy.portLevelSettings[0].port: required");
	CHECK_DIAG(c, "error: t.yaml:16: DestinationRule default/dr: spec.subsets[1]: subset \"v1\" "
		      "defined twice (also line 15)");
	CHECK_DIAG(c, "error: t.yaml:17: DestinationRule default/dr: spec.subsets[2].name: required");
	CHECK_DIAG(c, "error: t.yaml:18: DestinationRule default/dr: spec.subsets[3].name: \"V2\" is "
		      "not a valid subset name (RFC 1123 label)");
	CHECK_DIAG(c, "error: t.yaml:19: DestinationRule default/dr: spec.subsets[4]: expected a "
		      "map, got a list");
	CHECK_DIAG(c, "error: t.yaml:9: DestinationRule default/dr: "
		      "spec.trafficPolicy.loadBalancer.consistentHash: consistentHash takes one hash "
		      "key (useSourceIp, httpHeaderName, httpCookie or httpQueryParameterName)");
	CHECK_ERRORS(c, 9, "nine errors");
	CHECK_DIAG(c, "unsupported: DestinationRule/spec.workloadSelector at t.yaml:5");
	CHECK_DIAG(c, "unsupported: DestinationRule/spec.trafficPolicy.tls at t.yaml:11");
	CHECK_DIAG(c, "unsupported: DestinationRule/spec.trafficPolicy.loadBalancer.localityLbSetting "
		      "at t.yaml:10");
	bm_config_free(c);
}

/* consistentHash's keys: a header (lowercased), a cookie with path and ttl, a query
 * parameter; the ring settings are not read. */
static void test_destination_rule_hash(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: networking.istio.io/v1\n"
				   "kind: DestinationRule\n"
				   "metadata: {name: dr}\n"
				   "spec:\n"
				   "  host: backend\n"
				   "  trafficPolicy:\n"
				   "    loadBalancer: {consistentHash: {httpHeaderName: X-User}}\n"
				   "    portLevelSettings:\n"
				   "    - port: {number: 80}\n"
				   "      loadBalancer:\n"
				   "        consistentHash:\n"
				   "          httpCookie: {name: aff, path: /app, ttl: 0s}\n"
				   "          minimumRingSize: 1024\n"
				   "    - port: {number: 81}\n"
				   "      loadBalancer: {consistentHash: {httpQueryParameterName: s}}\n"
				   "    - port: {number: 82}\n"
				   "      loadBalancer: {consistentHash: {httpCookie: {path: /}}}\n");
	const struct bm_traffic_policy *tp;

	CHECK(c, c->n_destination_rules == 0, "the cookie without a name is refused");
	CHECK_DIAG(c, "error: t.yaml:17: DestinationRule default/dr: "
		      "spec.trafficPolicy.portLevelSettings[2].loadBalancer.consistentHash.httpCookie."
		      "name: required");
	CHECK_DIAG(c, "unsupported: DestinationRule/spec.trafficPolicy.portLevelSettings[0]."
		      "loadBalancer.consistentHash.minimumRingSize at t.yaml:13");
	bm_config_free(c);
	c = load("apiVersion: networking.istio.io/v1\n"
		 "kind: DestinationRule\n"
		 "metadata: {name: dr}\n"
		 "spec:\n"
		 "  host: backend\n"
		 "  trafficPolicy:\n"
		 "    loadBalancer: {consistentHash: {httpHeaderName: X-User}}\n"
		 "    portLevelSettings:\n"
		 "    - port: {number: 80}\n"
		 "      loadBalancer:\n"
		 "        consistentHash:\n"
		 "          httpCookie: {name: aff, path: /app, ttl: 0s}\n"
		 "    - port: {number: 81}\n"
		 "      loadBalancer: {consistentHash: {httpQueryParameterName: s}}\n");
	CHECK_ERRORS(c, 0, "good hash keys");
	tp = &c->destination_rules[0].policy;
	CHECK(c, tp->lb.hash == BM_HASH_HEADER && !strcmp(tp->lb.hash_name, "x-user"),
	      "httpHeaderName, lowercased");
	CHECK(c, tp->n_ports == 2 && tp->ports[0].lb.hash == BM_HASH_COOKIE &&
			 !strcmp(tp->ports[0].lb.hash_name, "aff") &&
			 !strcmp(tp->ports[0].lb.cookie_path, "/app") && tp->ports[0].lb.cookie_ttl_set &&
			 tp->ports[0].lb.cookie_ttl_s == 0,
	      "httpCookie: name, path, ttl 0s (a session cookie)");
	CHECK(c, tp->ports[1].lb.hash == BM_HASH_QUERY && !strcmp(tp->ports[1].lb.hash_name, "s"),
	      "httpQueryParameterName");
	CHECK(c, !tp->lb.hash_source_ip, "not the kernel's source-IP hash");
	bm_config_free(c);
}

static void test_virtual_service(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: networking.istio.io/v1\n"
				   "kind: VirtualService\n"
				   "metadata: {name: echo, namespace: prod}\n"
				   "spec:\n"
				   "  hosts: [tcp-echo]\n"
				   "  tcp:\n"
				   "  - match:\n"
				   "    - port: 9000\n"
				   "      sourceLabels: {app: client}\n"
				   "      sourceNamespace: default\n"
				   "      gateways: [mesh]\n"
				   "    route:\n"
				   "    - destination: {host: tcp-echo, subset: v1, port: {number: 9000}}\n"
				   "      weight: 90\n"
				   "    - destination: {host: tcp-echo, subset: v2}\n"
				   "      weight: 10\n"
				   "  - route:\n"
				   "    - destination: {host: tcp-echo.prod.svc.cluster.local}\n"
				   "  http:\n"
				   "  - route: [{destination: {host: tcp-echo}}]\n"
				   "  tls:\n"
				   "  - match: [{sniHosts: [a.example.com]}]\n"
				   "    route: [{destination: {host: a.example.com}}]\n");
	const struct bm_virtual_service *v;
	const struct bm_tcp_route *t;

	CHECK_ERRORS(c, 0, "a good VirtualService");
	CHECK(c, c->n_virtual_services == 1, "in the model");
	v = &c->virtual_services[0];
	CHECK(c, v->n_hosts == 1 && v->n_gateways == 0, "hosts; no gateways means mesh");
	CHECK(c, v->n_tcp == 2, "two tcp routes");
	t = &v->tcp[0];
	CHECK(c, t->n_match == 1 && t->match[0].port == 9000 && t->match[0].has_source_labels &&
			 !strcmp(t->match[0].source_namespace, "default") &&
			 t->match[0].n_gateways == 1 && t->match[0].loc.line == 8,
	      "match fields");
	CHECK(c, t->n_route == 2 && t->route[0].weight == 90 && t->route[0].has_weight &&
			 t->route[0].dest.port == 9000 && !strcmp(t->route[0].dest.subset, "v1") &&
			 t->route[1].weight == 10 && t->route[1].dest.port == 0,
	      "weighted destinations");
	CHECK(c, t->route[0].dest.loc.line == 13, "destination location");
	t = &v->tcp[1];
	CHECK(c, t->n_match == 0 && t->n_route == 1 && !t->route[0].has_weight && !t->route[0].weight,
	      "single destination without weight");
	CHECK(c, v->has_http && v->http_loc.line == 19 && v->has_tls && v->tls_loc.line == 21,
	      "http and tls remembered with their lines");
	CHECK(c, v->n_http == 1 && v->http[0].n_route == 1 &&
			 !strcmp(v->http[0].route[0].dest.host, "tcp-echo"),
	      "http routes read into the model");
	CHECK(c, !has_diag(c, "unsupported: VirtualService/spec.http at t.yaml:19"),
	      "http routes are no longer reported unsupported");
	CHECK_DIAG(c, "unsupported: VirtualService/spec.tls at t.yaml:21");
	bm_config_free(c);
}

static void test_virtual_service_bad(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: networking.istio.io/v1\n"
				   "kind: VirtualService\n"
				   "metadata: {name: vs}\n"
				   "spec:\n"
				   "  hosts: [\"*\", backend]\n"
				   "  tcp:\n"
				   "  - match:\n"
				   "    - port: 9000\n"
				   "      destinationSubnets: [10.0.0.0/8]\n"
				   "    route:\n"
				   "    - destination: {host: backend, subset: v1}\n"
				   "      weight: 0\n"
				   "    - destination: {host: backend, subset: v2}\n"
				   "  - route:\n"
				   "    - destination: {subset: v1}\n"
				   "      weight: -5\n"
				   "  - route: []\n"
				   "  - match: [{port: 1}]\n"
				   "---\n"
				   "apiVersion: networking.istio.io/v1\n"
				   "kind: VirtualService\n"
				   "metadata: {name: nohosts}\n"
				   "spec: {hosts: [], gateways: [gw]}\n");

	CHECK(c, c->n_virtual_services == 0, "left out");
	CHECK_DIAG(c, "error: t.yaml:5: VirtualService default/vs: spec.hosts[0]: \"*\" is not "
		      "allowed for a VirtualService bound to the mesh gateway");
	CHECK_DIAG(c, "unsupported: VirtualService/spec.tcp[0].match[0].destinationSubnets at "
		      "t.yaml:9");
	CHECK_DIAG(c, "error: t.yaml:11: VirtualService default/vs: spec.tcp[0].route: the weights "
		      "of several destinations are all zero");
	CHECK_DIAG(c, "error: t.yaml:16: VirtualService default/vs: spec.tcp[1].route[0].weight: -5 "
		      "is out of range 0..2147483647");
	CHECK_DIAG(c, "error: t.yaml:15: VirtualService default/vs: "
		      "spec.tcp[1].route[0].destination.host: required");
	CHECK_DIAG(c, "error: t.yaml:17: VirtualService default/vs: spec.tcp[2].route: at least one "
		      "destination is required");
	CHECK_DIAG(c, "error: t.yaml:18: VirtualService default/vs: spec.tcp[3].route: at least one "
		      "destination is required");
	CHECK_DIAG(c, "error: t.yaml:23: VirtualService default/nohosts: spec.hosts: at least one "
		      "host is required");
	CHECK_DIAG(c, "error: t.yaml:23: VirtualService default/nohosts: spec: http, tcp or tls "
		      "routes are required");
	CHECK_ERRORS(c, 8, "eight errors");
	bm_config_free(c);
}

/* ---- documents, kinds, structure ---- */

static void test_kinds_dispatch(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: apps/v1\n"
				   "kind: Deployment\n"
				   "metadata: {name: helloworld-v1}\n"
				   "spec: {replicas: 1}\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: ConfigMap\n"
				   "metadata: {name: cm, namespace: ops}\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Secret\n"
				   "metadata: {name: s}\n"
				   "---\n"
				   "apiVersion: networking.istio.io/v1beta1\n"
				   "kind: Gateway\n"
				   "metadata: {name: gw}\n"
				   "---\n"
				   "apiVersion: security.istio.io/v1\n"
				   "kind: RequestAuthentication\n"
				   "metadata: {name: ra}\n"
				   "---\n"
				   "apiVersion: example.com/v1\n"
				   "kind: Widget\n"
				   "---\n"
				   "apiVersion: networking.istio.io/v2\n"
				   "kind: VirtualService\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: ServiceAccount\n"
				   "metadata: {name: sa}\n"
				   "automountServiceAccountToken: false\n"
				   "---\n"
				   "apiVersion: batch/v1\n"
				   "kind: Job\n"
				   "metadata: {name: j}\n");

	CHECK_ERRORS(c, 0, "no kind here is an error");
	CHECK_DIAG(c, "warning: t.yaml:2: Deployment default/helloworld-v1 ignored: the mesh reads "
		      "Pod objects");
	CHECK_DIAG(c, "warning: t.yaml:7: ConfigMap ops/cm ignored: the mesh reads only ConfigMap "
		      "istio-system/bpfmesh");
	CHECK_DIAG(c, "unsupported: Secret at t.yaml:11 (kind not supported yet)");
	CHECK_DIAG(c, "unsupported: Gateway at t.yaml:15 (kind not supported yet)");
	CHECK_DIAG(c, "unsupported: RequestAuthentication at t.yaml:19 (kind not supported yet)");
	CHECK_DIAG(c, "unsupported: example.com/v1 Widget at t.yaml:23 (kind not supported yet)");
	CHECK_DIAG(c, "unsupported: networking.istio.io/v2 VirtualService at t.yaml:26 (kind not "
		      "supported yet)");
	CHECK_DIAG(c, "warning: t.yaml:34: Job default/j ignored: the mesh reads Pod objects");
	CHECK(c, c->n_diags == 8, "the ServiceAccount is accepted silently");
	bm_config_free(c);
}

static void test_missing_and_malformed(void **state)
{
	(void)state;
	struct bm_config *c = load("kind: Service\n"
				   "metadata: {name: x}\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "metadata: {name: x}\n"
				   "---\n"
				   "- a list\n"
				   "---\n"
				   "just a scalar\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Service\n"
				   "spec: {clusterIP: None}\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata: {namespace: a}\n"
				   "spec: {clusterIP: None}\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata: {name: Bad_Name, namespace: \"NS\"}\n"
				   "spec: {clusterIP: None}\n"
				   "---\n"
				   "apiVersion: [v1]\n"
				   "kind: 5\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: \"\"\n"
				   "---\n"
				   "# only a comment\n"
				   "---\n"
				   "~\n");

	CHECK_DIAG(c, "error: t.yaml:1: Service: apiVersion: required");
	CHECK_DIAG(c, "error: t.yaml:4: kind: required");
	CHECK_DIAG(c, "error: t.yaml:7: a resource must be a map with apiVersion and kind, not a "
		      "list");
	CHECK_DIAG(c, "error: t.yaml:9: a resource must be a map with apiVersion and kind, not a "
		      "scalar");
	CHECK_DIAG(c, "error: t.yaml:11: Service: metadata: required");
	CHECK_DIAG(c, "error: t.yaml:17: Service: metadata.name: required");
	CHECK_DIAG(c, "error: t.yaml:22: Service Bad_Name: metadata.name: \"Bad_Name\" is not a "
		      "valid name (lowercase RFC 1035 label: [a-z0-9-], a letter first, at most 63)");
	CHECK_DIAG(c, "error: t.yaml:22: Service Bad_Name: metadata.namespace: \"NS\" is not a valid "
		      "namespace name (lowercase RFC 1123 label: [a-z0-9-], at most 63)");
	CHECK_DIAG(c, "error: t.yaml:25: apiVersion: expected a string, got a list");
	CHECK_DIAG(c, "error: t.yaml:26: kind: expected a string, got the number 5 (quote it)");
	CHECK_DIAG(c, "error: t.yaml:28: kind: required");
	CHECK_ERRORS(c, 11, "eleven errors; comment-only and null documents are skipped");
	CHECK(c, c->n_services == 0, "nothing loaded");
	bm_config_free(c);

	c = load("apiVersion: v1\n"
		 "kind: Service\n"
		 "metadata:\n"
		 "  name: a\n"
		 "spec:\n"
		 "  ports:\n"
		 "  - port: 80\n"
		 "    name: a: b\n");
	CHECK_DIAG(c, "error: t.yaml:8: mapping values are not allowed in this context");
	CHECK_ERRORS(c, 1, "malformed YAML is one error, at its line");
	CHECK(c, c->n_services == 0, "a file that does not parse adds nothing");
	bm_config_free(c);
}

static void test_wrong_types(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata:\n"
				   "  name: a\n"
				   "  labels: [app, a]\n"
				   "spec:\n"
				   "  ports: {port: 80}\n"
				   "  selector: {app: true, version: 1.0, bad key: x, ok: \"1\"}\n"
				   "  publishNotReadyAddresses: \"true\"\n"
				   "---\n"
				   "apiVersion: networking.istio.io/v1\n"
				   "kind: VirtualService\n"
				   "metadata: {name: b}\n"
				   "spec:\n"
				   "  hosts: backend\n"
				   "  tcp: {route: []}\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata: {name: c}\n"
				   "spec: [1]\n");

	CHECK_DIAG(c, "error: t.yaml:5: Service default/a: metadata.labels: expected a map, got a "
		      "list");
	CHECK_DIAG(c, "error: t.yaml:7: Service default/a: spec.ports: expected a list, got a map");
	CHECK_DIAG(c, "error: t.yaml:8: Service default/a: spec.selector.app: expected a string, got "
		      "the boolean true (quote it)");
	CHECK_DIAG(c, "error: t.yaml:8: Service default/a: spec.selector.version: expected a string, "
		      "got the number 1.0 (quote it)");
	CHECK_DIAG(c, "error: t.yaml:8: Service default/a: spec.selector.bad key: invalid label key "
		      "(at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends, optional DNS prefix "
		      "and '/')");
	CHECK_DIAG(c, "error: t.yaml:9: Service default/a: spec.publishNotReadyAddresses: expected "
		      "true or false, got the quoted string \"true\"");
	CHECK_DIAG(c, "error: t.yaml:15: VirtualService default/b: spec.hosts: expected a list, got "
		      "the string \"backend\"");
	CHECK_DIAG(c, "error: t.yaml:16: VirtualService default/b: spec.tcp: expected a list, got a "
		      "map");
	CHECK_DIAG(c, "error: t.yaml:21: Service default/c: spec: expected a map, got a list");
	CHECK_ERRORS(c, 9, "nine type errors");
	bm_config_free(c);
}

static void test_duplicates(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata:\n"
				   "  name: a\n"
				   "  name: b\n");

	CHECK_DIAG(c, "error: t.yaml:5: duplicate key \"name\"");
	CHECK_ERRORS(c, 1, "a duplicate key is an error");
	bm_config_free(c);

	c = bm_config_new();
	const char *a = "apiVersion: networking.istio.io/v1beta1\n"
			"kind: VirtualService\n"
			"metadata: {name: vs}\n"
			"spec: {hosts: [a], tcp: [{route: [{destination: {host: a}}]}]}\n"
			"---\n"
			"apiVersion: v1\n"
			"kind: Service\n"
			"metadata: {name: vs}\n"
			"spec: {clusterIP: None}\n";
	const char *b = "# same VirtualService, other apiVersion, other file\n"
			"apiVersion: networking.istio.io/v1\n"
			"kind: VirtualService\n"
			"metadata: {name: vs, namespace: default}\n"
			"spec: {hosts: [b], tcp: [{route: [{destination: {host: b}}]}]}\n"
			"---\n"
			"apiVersion: networking.istio.io/v1\n"
			"kind: VirtualService\n"
			"metadata: {name: vs, namespace: other}\n"
			"spec: {hosts: [c], tcp: [{route: [{destination: {host: c}}]}]}\n";
	bm_config_load_buf(c, "a.yaml", a, strlen(a));
	bm_config_load_buf(c, "b.yaml", b, strlen(b));
	CHECK_DIAG(c, "error: b.yaml:2: VirtualService default/vs: defined twice (first at a.yaml:1)");
	CHECK_ERRORS(c, 1, "same name in another kind or namespace is fine");
	CHECK(c, c->n_virtual_services == 2 && !strcmp(c->virtual_services[0].hosts[0], "a") &&
			 !strcmp(c->virtual_services[1].meta.ns, "other"),
	      "the first one is kept, the second dropped");
	bm_config_free(c);
}

static void test_list(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: v1\n"
				   "kind: List\n"
				   "metadata: {resourceVersion: \"\"}\n"
				   "items:\n"
				   "- apiVersion: v1\n"
				   "  kind: Namespace\n"
				   "  metadata: {name: prod}\n"
				   "- apiVersion: v1\n"
				   "  kind: Service\n"
				   "  metadata: {name: web, namespace: prod}\n"
				   "  spec: {ports: [{port: 80}]}\n"
				   "- apiVersion: v1\n"
				   "  kind: List\n"
				   "  items: []\n"
				   "- apiVersion: v1\n"
				   "  kind: Service\n"
				   "  metadata: {name: bad}\n"
				   "  spec: {ports: [{port: 0}]}\n");

	CHECK(c, c->n_namespaces == 1 && c->n_services == 1, "items are documents");
	CHECK(c, c->services[0].meta.loc.line == 8, "an item's location is the item's line");
	CHECK_DIAG(c, "error: t.yaml:12: List: a List inside a List is not supported");
	CHECK_DIAG(c, "error: t.yaml:18: Service default/bad: spec.ports[0].port: 0 is out of range "
		      "1..65535");
	CHECK_ERRORS(c, 2, "two errors");
	bm_config_free(c);
}

static void test_bounds(void **state)
{
	(void)state;
	/* 9^8 aliases expanded: far over the node limit. */
	struct bm_config *c = load("a: &a [x, x, x, x, x, x, x, x, x]\n"
				   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
				   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
				   "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
				   "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
				   "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
				   "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
				   "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n");

	CHECK_DIAG(c, "error: t.yaml:7: YAML too large (node limit, aliases expanded)");
	CHECK_ERRORS(c, 1, "alias bomb refused");
	bm_config_free(c);

	char deep[2 * 200 + 2];

	memset(deep, '[', 200);
	memset(deep + 200, ']', 200);
	deep[400] = '\n';
	deep[401] = '\0';
	c = load(deep);
	CHECK_DIAG(c, "error: t.yaml:1: YAML nested too deeply");
	CHECK_ERRORS(c, 1, "deep nesting refused");
	bm_config_free(c);

	/* Past BM_CONFIG_MAX_DIAGS the diagnostics are capped but every error is counted. */
	size_t n = BM_CONFIG_MAX_DIAGS + 500, len = 0, cap = 64 + n * 16;
	char *buf = malloc(cap);

	assert_non_null(buf);
	len += (size_t)snprintf(buf + len, cap - len,
				"apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n ports:\n");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, " - {port: 0}\n");
	c = load(buf);
	free(buf);
	/* each item: "port 0 out of range", and items 2.. "name required": 2n - 1 errors, plus the
	 * first port's name */
	CHECK(c, c->n_errors == 2 * n, "every error counted");
	CHECK(c, c->n_diags == BM_CONFIG_MAX_DIAGS, "stored diagnostics capped");
	CHECK(c, !strcmp(c->diags[c->n_diags - 1].msg,
			 "warning: too many diagnostics: the rest are counted, not shown"),
	      "the cap is said");
	bm_config_free(c);
}

/* The buffer is read up to len, not to a NUL: what follows must not be seen. */
static void test_buffer_bounds(void **state)
{
	(void)state;
	static const char text[] = "apiVersion: v1\n"
				   "kind: Namespace\n"
				   "metadata: {name: a}\n"
				   "this: is: not: read [\n";
	struct bm_config *c = bm_config_new();
	char *buf = malloc(sizeof(text) - 1);

	assert_non_null(buf);
	memcpy(buf, text, sizeof(text) - 1); /* no terminating NUL: ASan sees an overread */
	CHECK(c, bm_config_load_buf(c, "t.yaml", buf, strstr(text, "this") - text) == 0,
	      "buffer loaded");
	CHECK_ERRORS(c, 0, "the bytes past len are not parsed");
	CHECK(c, c->n_namespaces == 1, "the resource inside len is");
	CHECK(c, bm_config_load_buf(c, "u.yaml", "kind: \0", 8) == 0, "a NUL byte in the buffer");
	CHECK(c, c->n_errors == 1 && c->diags[0].loc.line == 1 && !strcmp(c->diags[0].loc.file,
									     "u.yaml"),
	      "a NUL byte is a YAML error, not the end of the input");
	free(buf);
	bm_config_free(c);
}

/* ---- files and directories ---- */

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* Fixture: a temporary directory of manifests, removed in teardown whatever the test did. */
struct dir_fixture {
	char dir[64];
	struct bm_config *c;
};

static const char *const dir_files[] = { "a.yaml", "b.yml", "c.yaml", ".hidden.yaml",
					 "notes.txt", NULL };

static int dir_setup(void **state)
{
	struct dir_fixture *f = calloc(1, sizeof(*f));
	char path[600];

	if (!f)
		return -1;
	*state = f;
	snprintf(f->dir, sizeof(f->dir), "/tmp/bm-test-config-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	write_file(f->dir, "b.yml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n");
	write_file(f->dir, "a.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n");
	write_file(f->dir, "c.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n");
	write_file(f->dir, ".hidden.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: h}\n");
	write_file(f->dir, "notes.txt", "not: yaml: at all: [\n");
	snprintf(path, sizeof(path), "%s/sub.yaml", f->dir);
	return mkdir(path, 0700);
}

static int dir_teardown(void **state)
{
	struct dir_fixture *f = *state;
	char path[600];

	if (!f)
		return 0;
	bm_config_free(f->c);
	for (const char *const *n = dir_files; *n; n++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, *n);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/sub.yaml", f->dir);
	rmdir(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void test_load_dir(void **state)
{
	struct dir_fixture *f = *state;
	const char *dir = f->dir;
	struct bm_config *c = f->c = bm_config_new();
	char path[600];

	assert_non_null(c);
	CHECK(c, bm_config_load_dir(c, dir) == 0, "the directory is read");
	CHECK(c, c->n_namespaces == 2 && !strcmp(c->namespaces[0].meta.name, "a") &&
			 !strcmp(c->namespaces[1].meta.name, "b"),
	      "sorted by file name; dotfiles, other extensions and directories skipped");
	snprintf(path, sizeof(path), "error: %s/c.yaml:1: Namespace a: defined twice (first at "
		 "%s/a.yaml:1)", dir, dir);
	CHECK(c, has_diag(c, path), "duplicate across files names both files");
	CHECK_ERRORS(c, 1, "one error");
	CHECK(c, c->n_files == 3 && !strcmp(c->namespaces[0].meta.loc.file, c->files[0]),
	      "locations point into the file table");

	snprintf(path, sizeof(path), "%s/missing", dir);
	CHECK(c, bm_config_load_dir(c, path) == -1, "a missing directory is -1");
	CHECK(c, bm_config_load_file(c, path) == -1, "a missing file is -1");
	CHECK_ERRORS(c, 3, "and an error each");
	snprintf(path, sizeof(path), "error: %s/missing: cannot read the directory: %s", dir,
		 strerror(ENOENT));
	CHECK(c, has_diag(c, path), "the directory error says what and why");
}

/* Every seed example loads without error (one config each: 03 and 05 are alternatives). */
static void test_seed_examples(void **state)
{
	(void)state;
	static const char *const files[] = {
		"01-gateway.yaml", "02-virtualservice-canary.yaml", "03-destinationrule.yaml",
		"04-retry-timeout.yaml", "05-circuit-breaker.yaml", "06-peerauthentication-strict.yaml",
		"07-authorizationpolicy.yaml", NULL
	};
	const char *ex = examples_dir();
	char path[600], want[800];

	if (!ex) {
		fail_msg("examples/ not found: run from the repo root or set BM_EXAMPLES");
	}
	for (const char *const *f = files; *f; f++) {
		struct bm_config *c = bm_config_new();

		snprintf(path, sizeof(path), "%s/seed/%s", ex, *f);
		CHECK(c, bm_config_load_file(c, path) == 0, "seed file read");
		CHECK_ERRORS(c, 0, "seed file loads with 0 errors");
		if (!strcmp(*f, "01-gateway.yaml")) {
			snprintf(want, sizeof(want), "unsupported: Gateway at %s:2 (kind not supported "
				 "yet)", path);
			CHECK(c, has_diag(c, want), "Gateway reported unsupported");
		} else if (!strcmp(*f, "02-virtualservice-canary.yaml")) {
			snprintf(want, sizeof(want), "warning: %s:1: VirtualService "
				 "default/backend-routing: bound to gateway app-gateway only: its "
				 "routes wait for the Gateway (not supported yet)", path);
			CHECK(c, has_diag(c, want), "canary bound to its gateway only: a warning");
			CHECK(c, c->n_virtual_services == 1 && c->virtual_services[0].has_http &&
					 c->virtual_services[0].n_http == 3 &&
					 !strcmp(c->virtual_services[0].gateways[0], "app-gateway"),
			      "canary VirtualService kept with its three http rules");
		} else if (!strcmp(*f, "03-destinationrule.yaml")) {
			const struct bm_traffic_policy *tp = &c->destination_rules[0].policy;

			CHECK(c, c->n_diags == 0, "nothing to report");
			CHECK(c, tp->pool.set && tp->pool.max_connections == 100 &&
					 tp->pool.max_pending == 100 && !tp->pool.max_requests,
			      "connectionPool: maxConnections 100, http1MaxPendingRequests 100");
			CHECK(c, tp->outlier.set && tp->outlier.consecutive_5xx == 5 &&
					 tp->outlier.interval_ms == 30000 &&
					 tp->outlier.base_ejection_ms == 60000 &&
					 tp->outlier.max_ejection_pct == 10,
			      "outlierDetection: 5 in a row, 30 s sweeps, 60 s ejections");
			CHECK(c, c->n_destination_rules == 1 &&
					 c->destination_rules[0].policy.lb.simple == BM_LBS_ROUND_ROBIN &&
					 c->destination_rules[0].n_subsets == 2,
			      "ROUND_ROBIN and two subsets");
		} else if (!strcmp(*f, "05-circuit-breaker.yaml")) {
			const struct bm_traffic_policy *tp = &c->destination_rules[0].policy;

			CHECK(c, c->n_diags == 0, "nothing to report");
			CHECK(c, tp->pool.max_connections == 50 && tp->pool.max_pending == 50 &&
					 tp->pool.max_requests == 100 &&
					 tp->pool.max_requests_per_conn == 10,
			      "the circuit breaker's four limits");
			CHECK(c, tp->outlier.consecutive_5xx == 3 && tp->outlier.interval_ms == 10000 &&
					 tp->outlier.base_ejection_ms == 30000 &&
					 tp->outlier.max_ejection_pct == 50,
			      "its outlier detection");
		} else if (!strcmp(*f, "06-peerauthentication-strict.yaml")) {
			snprintf(want, sizeof(want), "unsupported: PeerAuthentication at %s:2 (kind not "
				 "supported yet)", path);
			CHECK(c, has_diag(c, want), "PeerAuthentication reported unsupported");
		} else if (!strcmp(*f, "07-authorizationpolicy.yaml")) {
			snprintf(want, sizeof(want), "unsupported: AuthorizationPolicy at %s:2 (kind "
				 "not supported yet)", path);
			CHECK(c, has_diag(c, want), "AuthorizationPolicy reported unsupported");
		}
		bm_config_free(c);
	}
}

/* Every Istio sample loads without error, each on its own, and the whole directory at once
 * fails only on the two tcp-echo VirtualServices that Istio applies one after the other. */
static void test_istio_samples(void **state)
{
	(void)state;
	static const char *const files[] = { "curl.yaml", "helloworld-gateway.yaml",
					     "helloworld.yaml", "httpbin.yaml", "sleep.yaml",
					     "tcp-echo-20-v2.yaml", "tcp-echo-all-v1.yaml",
					     "tcp-echo-services.yaml", NULL };
	const char *ex = examples_dir();
	char path[600];

	if (!ex) {
		fail_msg("examples/ not found: run from the repo root or set BM_EXAMPLES");
	}
	for (const char *const *f = files; *f; f++) {
		struct bm_config *c = bm_config_new();

		snprintf(path, sizeof(path), "%s/istio-samples/%s", ex, *f);
		CHECK(c, bm_config_load_file(c, path) == 0, "sample read");
		CHECK_ERRORS(c, 0, "sample loads with 0 errors");
		if (!strcmp(*f, "tcp-echo-services.yaml")) {
			const struct bm_service *s = &c->services[0];

			CHECK(c, c->n_services == 1 && s->n_ports == 2 && s->ports[0].port == 9000 &&
					 s->ports[1].port == 9001 &&
					 !strcmp(s->ports[1].name, "tcp-other"),
			      "tcp-echo Service ports 9000 and 9001");
			CHECK(c, count_level(c, BM_DIAG_WARNING) == 2, "two Deployments ignored");
		} else if (!strcmp(*f, "tcp-echo-20-v2.yaml")) {
			const struct bm_tcp_route *t = &c->virtual_services[0].tcp[0];

			CHECK(c, t->match[0].port == 31400 && t->n_route == 2 &&
					 t->route[0].weight == 80 && t->route[1].weight == 20 &&
					 !strcmp(t->route[1].dest.subset, "v2"),
			      "80/20 v1/v2 on port 31400");
		} else if (!strcmp(*f, "httpbin.yaml")) {
			CHECK(c, c->services[0].ports[0].target_port == 8080, "httpbin targetPort");
		}
		bm_config_free(c);
	}
	struct bm_config *c = bm_config_new();

	snprintf(path, sizeof(path), "%s/istio-samples", ex);
	CHECK(c, bm_config_load_dir(c, path) == 0, "samples directory read");
	CHECK_ERRORS(c, 1, "only the second tcp-echo VirtualService conflicts");
	bm_config_free(c);
}

/* ---- helpers exported to the rest of the agent ---- */

static void test_ip_helpers(void **state)
{
	(void)state;
	static const char *const bad[] = { "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4",
					   " 1.2.3.4", "1.2.3.4 ", "fe80::1%eth0", "::g", "10.0.0.0/8",
					   "localhost", NULL };
	struct bm_ip ip;
	char buf[64];

	assert_int_equal(bm_ip_parse("192.168.1.20", &ip), 0);
	assert_true(bm_ip_is_v4(&ip));
	assert_int_equal(ip.a[10], 0xff);
	assert_int_equal(ip.a[15], 20);
	bm_ip_format(&ip, buf, sizeof(buf));
	assert_string_equal(buf, "192.168.1.20");
	assert_int_equal(bm_ip_parse("::ffff:10.0.0.1", &ip), 0);
	assert_true(bm_ip_is_v4(&ip));
	bm_ip_format(&ip, buf, sizeof(buf));
	assert_string_equal(buf, "10.0.0.1");
	assert_int_equal(bm_ip_parse("2001:DB8::1", &ip), 0);
	assert_false(bm_ip_is_v4(&ip));
	bm_ip_format(&ip, buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8::1");
	bm_ip_format(&ip, buf, 5);
	assert_string_equal(buf, "2001");
	for (const char *const *b = bad; *b; b++)
		if (bm_ip_parse(*b, &ip) == 0)
			fail_msg("bm_ip_parse accepted \"%s\"", *b);
}

static void test_labels_helpers(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: v1\n"
				   "kind: Pod\n"
				   "metadata:\n"
				   "  name: p\n"
				   "  labels: {zeta: z, app: web, version: v1, example.com/tier: front}\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata: {name: s}\n"
				   "spec: {clusterIP: None, selector: {version: v1, app: web}}\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata: {name: t}\n"
				   "spec: {clusterIP: None, selector: {app: web, version: v2}}\n");
	const struct bm_labels *l;
	struct bm_labels empty = { 0 };

	CHECK_ERRORS(c, 0, "labels parse");
	l = &c->pods[0].meta.labels;
	CHECK(c, l->n == 4 && !strcmp(l->v[0].key, "app") && !strcmp(l->v[3].key, "zeta"),
	      "labels sorted by key");
	CHECK(c, !strcmp(bm_labels_get(l, "example.com/tier"), "front") && !bm_labels_get(l, "x"),
	      "get present and absent");
	CHECK(c, bm_labels_match(&c->services[0].selector, l), "selector subset matches");
	CHECK(c, !bm_labels_match(&c->services[1].selector, l), "a different value does not");
	CHECK(c, bm_labels_match(&empty, l), "empty selector matches everything");
	CHECK(c, !bm_labels_match(l, &c->services[0].selector), "more keys than labels: no match");
	bm_config_free(c);
}

/* ConfigMap istio-system/bpfmesh: the mesh-wide settings. */
static void test_mesh_configmap(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: v1\n"
				   "kind: ConfigMap\n"
				   "metadata: {name: bpfmesh, namespace: istio-system}\n"
				   "data:\n"
				   "  sameNodeBypass: \"false\"\n"
				   "  tracing: on\n");

	CHECK_ERRORS(c, 0, "a good mesh ConfigMap has no error");
	CHECK(c, c->mesh.has_bypass && !c->mesh.bypass, "sameNodeBypass \"false\" read");
	CHECK_DIAG(c, "unsupported: ConfigMap/data.tracing at t.yaml:6");
	bm_config_free(c);

	c = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bpfmesh, namespace: istio-system}\n"
		 "data: {sameNodeBypass: \"maybe\"}\n");
	CHECK_ERRORS(c, 1, "a bad sameNodeBypass value is an error");
	CHECK_DIAG(c, "error: t.yaml:4: ConfigMap istio-system/bpfmesh: data.sameNodeBypass: \"maybe\" "
		      "is neither \"true\" nor \"false\"");
	bm_config_free(c);

	c = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bpfmesh, namespace: istio-system}\n"
		 "data: {sameNodeBypass: false}\n");
	CHECK_ERRORS(c, 1, "an unquoted boolean where a ConfigMap wants a string is an error");
	bm_config_free(c);

	c = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bpfmesh}\n"
		 "data: {sameNodeBypass: \"false\"}\n");
	CHECK(c, !c->mesh.has_bypass, "a bpfmesh ConfigMap outside istio-system is not the mesh's");
	bm_config_free(c);
}

static void test_diag_api(void **state)
{
	(void)state;
	struct bm_config *c = bm_config_new();
	struct bm_loc loc = { .file = "x.yaml", .line = 7 };
	char *out = NULL;
	size_t len = 0;
	FILE *fp;

	bm_config_diag(c, BM_DIAG_ERROR, &loc, "VirtualService %s/%s: bad\n", "ns", "vs");
	bm_config_diag(c, BM_DIAG_WARNING, NULL, "no location");
	bm_config_diag(c, BM_DIAG_UNSUPPORTED, &loc, "Kind/spec.x");
	CHECK(c, c->n_errors == 1 && c->n_diags == 3, "one error among three");
	CHECK(c, c->diags[0].loc.line == 7, "location kept");
	fp = open_memstream(&out, &len);
	assert_non_null(fp);
	bm_config_print_diags(c, fp);
	fclose(fp);
	assert_string_equal(out, "error: x.yaml:7: VirtualService ns/vs: bad?\n"
				 "warning: no location\n"
				 "unsupported: Kind/spec.x at x.yaml:7\n");
	free(out);
	bm_config_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_namespace),
		cmocka_unit_test(test_service_good),
		cmocka_unit_test(test_service_unsupported),
		cmocka_unit_test(test_service_bad_ports),
		cmocka_unit_test(test_service_cluster_ips),
		cmocka_unit_test(test_pod),
		cmocka_unit_test(test_pod_bad),
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_endpoint_slice),
		cmocka_unit_test(test_workload_entry),
		cmocka_unit_test(test_service_entry),
		cmocka_unit_test(test_service_entry_bad),
		cmocka_unit_test(test_destination_rule),
		cmocka_unit_test(test_destination_rule_bad),
		cmocka_unit_test(test_destination_rule_hash),
		cmocka_unit_test(test_virtual_service),
		cmocka_unit_test(test_virtual_service_bad),
		cmocka_unit_test(test_kinds_dispatch),
		cmocka_unit_test(test_missing_and_malformed),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_buffer_bounds),
		cmocka_unit_test_setup_teardown(test_load_dir, dir_setup, dir_teardown),
		cmocka_unit_test(test_seed_examples),
		cmocka_unit_test(test_istio_samples),
		cmocka_unit_test(test_ip_helpers),
		cmocka_unit_test(test_labels_helpers),
		cmocka_unit_test(test_mesh_configmap),
		cmocka_unit_test(test_diag_api),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
