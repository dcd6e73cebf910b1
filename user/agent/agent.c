/* The node agent's apply: read the config directory, validate it whole, compile it for this
 * node and install it, or reject it, say why in the status file and keep serving the last one. */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blobtab.h"
#include "catalog.h"
#include "config.h"
#include "log.h"
#include "tables.h"
#include "tc_host.h"

static const char *const qos_dirs[] = { "kubepods", "kubepods/burstable", "kubepods/besteffort" };

/* Cgroup of a local pod, as the kubelet's cgroupfs driver lays it out. */
static int pod_cgroup(void *arg, const struct bm_pod *pod, uint64_t *cgid)
{
	struct bm_agent *a = arg;
	char path[PATH_MAX + 320];
	struct stat st;

	if (!pod->meta.uid)
		return -1;
	for (size_t i = 0; i < sizeof(qos_dirs) / sizeof(qos_dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s/pod%s", a->cgroup, qos_dirs[i], pod->meta.uid);
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			*cgid = st.st_ino; /* the cgroup id on cgroup v2 */
			return 0;
		}
	}
	a->unresolved_pods++;
	return -1;
}

static int write_file_atomic(const char *dir, const char *name, const char *text)
{
	char tmp[PATH_MAX + 64], dst[PATH_MAX + 64];
	int fd;
	size_t len = strlen(text);

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(dst, sizeof(dst), "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len) {
		int err = -errno;

		close(fd);
		unlink(tmp);
		return err ? err : -EIO;
	}
	close(fd);
	return rename(tmp, dst) ? -errno : 0;
}

static void read_source_generation(const char *dir, char *buf, size_t len)
{
	char path[PATH_MAX + 16];
	FILE *fp;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "%s/.generation", dir);
	fp = fopen(path, "r");
	if (!fp)
		return;
	if (fgets(buf, (int)len, fp))
		buf[strcspn(buf, "\r\n")] = '\0';
	fclose(fp);
	for (char *p = buf; *p; p++)
		if (*p < '0' || *p > '9') {
			buf[0] = '\0'; /* only a number is meaningful */
			break;
		}
}

static void write_status(struct bm_agent *a, const char *src_gen, const char *result,
			 const char *error, const struct bm_install_stats *st)
{
	char text[4096];
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(text, sizeof(text),
		 "generation=%llu\nsource_generation=%s\nresult=%s\nerror=%s\napplied_generation=%llu\n"
		 "time_unix_ns=%llu\nservice_ports=%u\nworkloads=%u\napply_us=%llu\n",
		 (unsigned long long)a->generation, src_gen, result, error ? error : "",
		 (unsigned long long)a->applied,
		 (unsigned long long)now.tv_sec * 1000000000ull + (unsigned long long)now.tv_nsec,
		 st ? st->svc_total : 0, st ? st->wl_total : 0,
		 st ? (unsigned long long)st->duration_ns / 1000 : 0);
	int err = write_file_atomic(a->state_dir, "status", text);

	if (err)
		bm_err("write %s/status: %s", a->state_dir, strerror(-err));
}

/* Names of the service entries, for bpfmeshctl's decoded dumps. */
static void write_services(struct bm_agent *a, const struct bm_tables *t)
{
	size_t cap = 4096 + t->n_svc * 160 + t->n_set * 160;
	char *text = malloc(cap), ip[64];
	size_t off = 0;

	if (!text)
		return;
	text[0] = '\0';
	for (size_t i = 0; i < t->n_svc && off < cap; i++) {
		struct bm_ip vip;

		memcpy(vip.a, t->svc[i].key.addr, 16);
		bm_ip_format(&vip, ip, sizeof(ip));
		off += (size_t)snprintf(text + off, cap - off, "svc\t%s\t%u\t%u\t%s\n", ip,
					(unsigned)ntohs(t->svc[i].key.port), t->svc[i].key.proto,
					t->svc[i].name);
	}
	for (size_t i = 0; i < t->n_wl && off < cap; i++)
		off += (size_t)snprintf(text + off, cap - off, "wl\t%llu\t%s\n",
					(unsigned long long)t->wl[i].cgid, t->wl[i].name);
	if (off < cap)
		write_file_atomic(a->state_dir, "services", text);
	free(text);
}

/* Attach the datapath once it holds a config: at once when the maps were reused, after the
 * first config that applies when maps are being migrated (new programs on empty maps would
 * refuse every service). */
static int commit(struct bm_agent *a)
{
	int err;

	if (a->dp.committed)
		return 0;
	if (a->dp.n_migrate && !a->applied) {
		bm_warn("the migrated maps wait for a config that applies; the previous datapath keeps "
			"serving");
		return 0;
	}
	err = bm_dp_commit(&a->dp);
	if (!err && (a->tc_ifaces || a->tc_host_ifaces))
		err = bm_tc_commit(&a->tc);
	if (err)
		bm_err("attaching the datapath failed: %s", strerror(-err));
	return err;
}

static const char *first_error(const struct bm_config *c)
{
	for (size_t i = 0; i < c->n_diags; i++)
		if (c->diags[i].level == BM_DIAG_ERROR)
			return c->diags[i].msg;
	return "unknown error";
}

static void log_diags(const struct bm_config *c)
{
	for (size_t i = 0; i < c->n_diags; i++) {
		const struct bm_diag *d = &c->diags[i];

		const char *m = d->msg;

		/* The level is the log line's; the diag's own prefix would repeat it. */
		if (d->level == BM_DIAG_ERROR && !strncmp(m, "error: ", 7))
			m += 7;
		else if (d->level == BM_DIAG_WARNING && !strncmp(m, "warning: ", 9))
			m += 9;
		bm_log(d->level == BM_DIAG_ERROR ? BM_LOG_ERROR : BM_LOG_WARN, "%s", m);
	}
}

/* ---- outlier detection: the kernel's sets follow the agent's ejections ---- */

static void ep_format(const struct sockaddr_storage *ep, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ep->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ep)->sin_addr, ip, sizeof(ip));
		port = ntohs(((const struct sockaddr_in *)ep)->sin_port);
	} else if (ep->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ep)->sin6_addr, ip, sizeof(ip));
		port = ntohs(((const struct sockaddr_in6 *)ep)->sin6_port);
	}
	snprintf(buf, len, ep->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
}

/* (host, address, port) as od_keys holds it; 0 when it does not fit. */
static size_t od_key(const char *host, const struct bm_ip *ip, uint16_t port, uint8_t *k,
		     size_t cap)
{
	size_t n = strlen(host) + 1;

	if (n + sizeof(ip->a) + sizeof(port) > cap)
		return 0;
	memcpy(k, host, n);
	memcpy(k + n, ip->a, sizeof(ip->a));
	memcpy(k + n + sizeof(ip->a), &port, sizeof(port));
	return n + sizeof(ip->a) + sizeof(port);
}

/* bm_outlier_each: one ejected endpoint of a cluster "outbound|port|subset|host". */
static void od_key_add(void *arg, const char *cluster, const struct sockaddr_storage *ep)
{
	struct bm_agent *a = arg;
	const char *host = cluster;
	struct bm_ip ip = { .a = { [10] = 0xff, [11] = 0xff } };
	uint16_t port;
	uint8_t key[512];
	size_t len;
	int created;

	for (int i = 0; i < 3 && host; i++)
		if ((host = strchr(host, '|')))
			host++;
	if (!host)
		return;
	if (ep->ss_family == AF_INET) {
		memcpy(ip.a + 12, &((const struct sockaddr_in *)ep)->sin_addr, 4);
		port = ntohs(((const struct sockaddr_in *)ep)->sin_port);
	} else {
		memcpy(ip.a, &((const struct sockaddr_in6 *)ep)->sin6_addr, 16);
		port = ntohs(((const struct sockaddr_in6 *)ep)->sin6_port);
	}
	len = od_key(host, &ip, port, key, sizeof(key));
	if (len && !bm_blobtab_put(&a->od_keys, key, len, &created))
		bm_warn("outlier detection: out of memory; %s stays in the kernel's sets", host);
}

/* bm_compile_opts.ejected */
static bool od_ejected(void *arg, const char *host, const struct bm_ip *ip, uint16_t port)
{
	struct bm_agent *a = arg;
	uint8_t key[512];
	size_t len = od_key(host, ip, port, key, sizeof(key));

	return len && bm_blobtab_get(&a->od_keys, key, len);
}

/* The next sweep, at most a second away (each cluster sweeps at its own interval), or a
 * re-apply at once when the ejections changed. */
static void od_arm(struct bm_agent *a)
{
	uint64_t now = bm_evloop_now(a->loop), due = bm_outlier_next_due(a->od), after;

	if (a->od_changed)
		after = 1;
	else if (due)
		after = due > now ? (due - now < 1000 ? due - now : 1000) : 1;
	else {
		bm_ev_timer_cancel(a->loop, &a->od_timer);
		return;
	}
	if (bm_ev_timer_arm(a->loop, &a->od_timer, after))
		bm_warn("outlier detection: out of memory arming its timer");
}

static void od_fire(struct bm_evloop *loop, struct bm_ev_timer *t)
{
	struct bm_agent *a = t->data;
	size_t back = bm_outlier_sweep(a->od, bm_evloop_now(loop));

	if (back) {
		bm_info("outlier detection: %zu endpoint%s back after the ejection time (%zu still "
			"ejected)",
			back, back == 1 ? "" : "s", bm_outlier_n_ejected(a->od));
		a->od_changed = true;
	}
	if (a->od_changed)
		bm_agent_apply(a); /* rejected: the last good sets stay, retried with the config */
	od_arm(a);
}

/* bm_l7.on_outcome: after each attempt that reached, or tried to reach, an endpoint. */
static void od_outcome(void *arg, const char *cluster, const struct sockaddr_storage *ep,
		       bool ejected)
{
	struct bm_agent *a = arg;
	char name[INET6_ADDRSTRLEN + 16];

	if (ejected) {
		ep_format(ep, name, sizeof(name));
		bm_info("outlier detection: %s ejected from %s (%zu ejected)", name, cluster,
			bm_outlier_n_ejected(a->od));
		a->od_changed = true;
		od_arm(a);
	} else if (!bm_ev_timer_armed(&a->od_timer)) {
		od_arm(a);
	}
}

/* The endpoints outlier detection has ejected now, for bpfmeshctl and the tests. */
static void od_line(void *arg, const char *cluster, const struct sockaddr_storage *ep)
{
	FILE *fp = arg;
	char name[INET6_ADDRSTRLEN + 16];

	ep_format(ep, name, sizeof(name));
	fprintf(fp, "ejected\t%s\t%s\n", cluster, name);
}

static void write_outliers(struct bm_agent *a)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	if (!fp)
		return;
	bm_outlier_each(a->od, od_line, fp);
	if (!fclose(fp))
		write_file_atomic(a->state_dir, "outliers", text);
	free(text);
}

/* The mesh's bypass switch, and the endpoints on other nodes: the agent's connections to them
 * stay off the bypass. */
static void set_remote(struct bm_agent *a, const struct bm_tables *t)
{
	struct bm_l7_ep *eps = calloc(t->n_be ? t->n_be : 1, sizeof(*eps));
	size_t n = 0;

	for (size_t i = 0; eps && i < t->n_be; i++)
		if (t->be[i].flags & BM_BE_F_REMOTE)
			eps[n++] = (struct bm_l7_ep){ t->be[i].ip, t->be[i].port };
	if (!eps || bm_l7_set_bypass(&a->l7, t->cfg_flags & BM_CFG_F_BYPASS, eps, n))
		bm_warn("out of memory for the remote endpoint set: the old one stays");
	free(eps);
}

/* The HTTP router for this config: the service ports with http rules, the callers by the
 * workload ids the installer gave them. On failure the previous router keeps routing. */
static void update_router(struct bm_agent *a, const struct bm_catalog *cat, const struct bm_tables *t)
{
	struct bm_router_caller *callers = calloc(t->n_wl ? t->n_wl : 1, sizeof(*callers));
	struct bm_config_pin *pin = bm_config_cache_pin(a->cache);
	struct bm_router *r = NULL;
	struct bm_router_stats st;
	size_t n = 0;
	char err[256] = "out of memory";

	set_remote(a, t);
	if (callers && pin) {
		for (size_t i = 0; i < t->n_wl; i++) {
			const struct bm_blob_ent *e = bm_blobtab_get(&a->in.wl_tab, t->wl[i].name,
								     strlen(t->wl[i].name));

			if (e && t->wl[i].pod)
				callers[n++] = (struct bm_router_caller){ (uint32_t)e->val,
									  t->wl[i].pod };
		}
		r = bm_router_build(cat, callers, n, pin, a->od, err, sizeof(err));
		pin = NULL; /* the router's now, freed with it */
	}
	free(callers);
	bm_config_pin_free(pin);
	if (!r) {
		bm_err("HTTP routes of generation %llu not updated (%s): the previous ones keep "
		       "routing",
		       (unsigned long long)a->generation, err);
		return;
	}
	bm_router_stats(r, &st);
	bm_info("HTTP routes: %zu service ports, %zu rules, %zu clusters, %zu endpoints", st.ports,
		st.rules, st.clusters, st.endpoints);
	bm_l7_set_router(&a->l7, r);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int bm_agent_apply(struct bm_agent *a)
{
	uint64_t t0 = now_us(), t_load, t_compile;
	size_t reparsed = 0;
	struct bm_config *c = bm_config_cache_load(a->cache, a->config_dir, &reparsed);
	struct bm_catalog cat = {};
	struct bm_tables t = {};
	struct bm_install_stats st = {};
	struct bm_compile_opts o = { .node = a->node, .pod_cgroup = pod_cgroup, .arg = a,
				     .no_bypass = a->no_sockmap };
	char src_gen[32], msg[512];

	if (a->l7_on) {
		o.l7_port = a->l7o.port;
		o.l7_addr4 = a->l7o.addr4;
		o.l7_addr6 = a->l7o.addr6;
	}
	int rc = -1;

	a->generation++;
	a->unresolved_pods = 0;
	/* The endpoints outlier detection ejected leave the kernel's sets too. */
	a->od_changed = false;
	if (a->od && bm_outlier_n_ejected(a->od)) {
		bm_outlier_each(a->od, od_key_add, a);
		o.ejected = od_ejected;
	}
	read_source_generation(a->config_dir, src_gen, sizeof(src_gen));
	if (!c) {
		write_status(a, src_gen, "rejected", "out of memory", NULL);
		return -1;
	}
	t_load = now_us();
	if (!c->n_errors && bm_catalog_build(&cat, c))
		bm_config_diag(c, BM_DIAG_ERROR, NULL, "out of memory building the catalog");
	if (!c->n_errors && bm_compile(&cat, &o, &t))
		bm_config_diag(c, BM_DIAG_ERROR, NULL, "out of memory compiling the tables");
	t_compile = now_us();
	log_diags(c);
	if (c->n_errors) {
		bm_err("config generation %llu rejected (%zu errors): the last good config keeps "
		       "serving",
		       (unsigned long long)a->generation, c->n_errors);
		write_status(a, src_gen, "rejected", first_error(c), NULL);
		rc = commit(a) ? -2 : -1;
		goto cleanup;
	}
	if (bm_install_apply(&a->in, &t, a->generation, &st, msg, sizeof(msg))) {
		bm_err("config generation %llu not installed: %s", (unsigned long long)a->generation,
		       msg);
		write_status(a, src_gen, "rejected", msg, NULL);
		rc = commit(a) ? -2 : -1;
		goto cleanup;
	}
	a->applied = a->generation;
	bm_info("applied generation %llu (source %s) in %llu us: %zu files parsed in %llu us, "
		"compiled in %llu us, installed in %llu us; same-node bypass %s, %u service ports (%u written, %u removed), "
		"%zu backends (%u new), %zu sets (%u new), %zu routes (%u new), %u workloads, "
		"%u source routes",
		(unsigned long long)a->generation, src_gen[0] ? src_gen : "-",
		(unsigned long long)(now_us() - t0), reparsed, (unsigned long long)(t_load - t0),
		(unsigned long long)(t_compile - t_load), (unsigned long long)st.duration_ns / 1000,
		t.cfg_flags & BM_CFG_F_BYPASS ? "on" : "off", st.svc_total,
		st.svc_written, st.svc_deleted, t.n_be, st.new_backends, t.n_set, st.new_sets,
		t.n_route, st.new_routes, st.wl_total, st.src_total);
	write_services(a, &t);
	if (a->l7_on) {
		update_router(a, &cat, &t);
		write_outliers(a);
	}
	/* The node's own processes: every service address routed to bm_svc0. */
	if (a->tc_host_ifaces && bm_host_routes_sync(&t))
		bm_warn("the node's own processes may not reach every service (routes to %s)",
			BM_SVC_DEV);
	if (commit(a)) {
		rc = -2;
		goto cleanup;
	}
	write_status(a, src_gen, "ok", NULL, &st);
	if (!a->ready) {
		a->ready = 1;
		write_file_atomic(a->state_dir, "ready", "ok\n");
	}
	rc = 0;
cleanup:
	bm_blobtab_free(&a->od_keys);
	bm_tables_free(&t);
	bm_catalog_free(&cat);
	bm_config_free(c);
	/* An apply allocates and frees a lot at once: give it back, so the resident size is what
	 * the agent holds between applies. */
	malloc_trim(0);
	return rc;
}

int bm_agent_start(struct bm_agent *a)
{
	char cmd[PATH_MAX + 16];
	int err;

	snprintf(cmd, sizeof(cmd), "%s", a->state_dir);
	for (char *p = cmd + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(cmd, 0755);
			*p = '/';
		}
	if (mkdir(a->state_dir, 0755) && errno != EEXIST) {
		bm_err("create state dir %s: %s", a->state_dir, strerror(errno));
		return -errno;
	}
	snprintf(cmd, sizeof(cmd), "%s/ready", a->state_dir);
	unlink(cmd);
	err = bm_dp_open(&a->dp, a->bpffs, a->node, a->cgroup);
	if (err)
		return err;
	err = bm_install_init(&a->in, &a->dp);
	if (err) {
		bm_dp_close(&a->dp);
		return err;
	}
	if (a->tc_ifaces || a->tc_host_ifaces) {
		err = bm_tc_open(&a->tc, &a->dp, a->tc_ifaces, a->tc_host_ifaces);
		if (err) {
			bm_install_free(&a->in);
			bm_dp_close(&a->dp);
			return err;
		}
	}
	a->cache = bm_config_cache_new();
	if (!a->cache) {
		bm_agent_stop(a);
		return -ENOMEM;
	}
	if (a->l7_on) {
		a->l7o.bypass = !a->no_sockmap;
		bm_ev_timer_init(&a->od_timer, od_fire, a);
		a->od = bm_outlier_new();
		err = a->od ? bm_l7_start(&a->l7, a->loop, &a->dp, &a->l7o) : -ENOMEM;
		if (err) {
			bm_agent_stop(a);
			return err;
		}
		a->l7.on_outcome = od_outcome;
		a->l7.outcome_arg = a;
	}
	return 0;
}

void bm_agent_stop(struct bm_agent *a)
{
	/* The datapath stays: links and maps are pinned and keep serving without us. HTTP
	 * service ports go back to L4 when the listener closes. */
	bm_l7_stop(&a->l7);
	if (a->od) {
		bm_ev_timer_cancel(a->loop, &a->od_timer);
		bm_outlier_free(a->od);
		a->od = NULL;
	}
	if (a->tc_ifaces || a->tc_host_ifaces)
		bm_tc_close(&a->tc);
	bm_install_free(&a->in);
	bm_dp_close(&a->dp);
	bm_config_cache_free(a->cache);
	a->cache = NULL;
}

int bm_agent_check(const char *dir, const char *node, FILE *fp)
{
	struct bm_config *c = bm_config_new();
	struct bm_catalog cat = {};
	struct bm_tables t = {};
	/* Checked as the agent runs it with an HTTP listener: no warning about its absence. */
	struct bm_compile_opts o = { .node = node, .l7_port = BM_L7_DEFAULT_PORT,
				     .l7_addr4 = { .a = { [10] = 0xff, [11] = 0xff, 127, 0, 0, 1 } } };
	size_t n_unsup = 0, n_warn = 0;
	int rc;

	if (!c) {
		fprintf(fp, "error: out of memory\n");
		return -1;
	}
	bm_config_load_dir(c, dir);
	if (!c->n_errors && !bm_catalog_build(&cat, c))
		bm_compile(&cat, &o, &t);
	bm_config_print_diags(c, fp);
	for (size_t i = 0; i < c->n_diags; i++) {
		n_unsup += c->diags[i].level == BM_DIAG_UNSUPPORTED;
		n_warn += c->diags[i].level == BM_DIAG_WARNING;
	}
	fprintf(fp, "%s: %zu errors, %zu unsupported, %zu warnings; %zu service ports, %zu backends\n",
		dir, c->n_errors, n_unsup, n_warn, t.n_svc, t.n_be);
	rc = c->n_errors ? -1 : 0;
	bm_tables_free(&t);
	bm_catalog_free(&cat);
	bm_config_free(c);
	return rc;
}
