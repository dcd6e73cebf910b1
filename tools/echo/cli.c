/* cli.c - bm-echo's command line: identity, labels, TCP/UDP port lists and limits.
 * Values point into argv; nothing here allocates, so there is nothing to free. */
#include "echo.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
	"usage: bm-echo --pod NAME --namespace NS --node NODE [--version V] [--label k=v]...\n"
	"               [--tcp PORT[,PORT...]] [--udp PORT[,PORT...]] [--ready-file PATH]\n"
	"               [--idle-timeout DUR] [--max-conns N] [--quiet]\n"
	"  DUR is a number with an optional unit ms, s or m (default s).\n"
	"  At least one --tcp or --udp port is required.\n";

/* Identity values end up in headers and log lines: printable ASCII, no spaces. */
static int check_value(const char *flag, const char *v, bool allow_empty)
{
	if (!*v && !allow_empty) {
		fprintf(stderr, "bm-echo: %s: empty value\n", flag);
		return -EINVAL;
	}
	for (const char *p = v; *p; p++) {
		if (*p <= ' ' || *p == 0x7f) {
			fprintf(stderr, "bm-echo: %s %s: spaces and control characters are not allowed\n",
				flag, v);
			return -EINVAL;
		}
	}
	return 0;
}

static int add_ports(const char *flag, const char *arg, uint16_t *ports, size_t *n)
{
	const char *p = arg;

	for (;;) {
		size_t len = strcspn(p, ",");
		uint64_t v;

		if (bm_parse_u64(p, len, 65535, &v) || v == 0) {
			fprintf(stderr, "bm-echo: %s %s: ports are numbers 1..65535, comma separated\n",
				flag, arg);
			return -EINVAL;
		}
		for (size_t i = 0; i < *n; i++) {
			if (ports[i] == v) {
				fprintf(stderr, "bm-echo: %s: port %lu given twice\n", flag,
					(unsigned long)v);
				return -EINVAL;
			}
		}
		if (*n == BM_ECHO_MAX_PORTS) {
			fprintf(stderr, "bm-echo: %s: more than %d ports\n", flag, BM_ECHO_MAX_PORTS);
			return -EINVAL;
		}
		ports[(*n)++] = (uint16_t)v;
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

static int add_label(struct bm_echo_cfg *cfg, const char *arg)
{
	const char *eq = strchr(arg, '=');

	if (!eq || eq == arg) {
		fprintf(stderr, "bm-echo: --label %s: expected key=value\n", arg);
		return -EINVAL;
	}
	if (cfg->nlabels == BM_ECHO_MAX_LABELS) {
		fprintf(stderr, "bm-echo: --label: more than %d labels\n", BM_ECHO_MAX_LABELS);
		return -EINVAL;
	}
	if (check_value("--label", arg, false))
		return -EINVAL;
	cfg->labels[cfg->nlabels++] = (struct bm_label){
		.key = arg, .key_len = (size_t)(eq - arg), .value = eq + 1,
	};
	return 0;
}

/* Returns 0 to run, 1 when --help was printed, -EINVAL on a bad command line. */
int bm_cli_parse(int argc, char **argv, struct bm_echo_cfg *cfg)
{
	enum { O_POD = 256, O_NS, O_NODE, O_VERSION, O_LABEL, O_TCP, O_UDP, O_READY, O_QUIET,
	       O_IDLE, O_MAXCONNS, O_HELP };
	static const struct option opts[] = {
		{ "pod", required_argument, NULL, O_POD },
		{ "namespace", required_argument, NULL, O_NS },
		{ "node", required_argument, NULL, O_NODE },
		{ "version", required_argument, NULL, O_VERSION },
		{ "label", required_argument, NULL, O_LABEL },
		{ "tcp", required_argument, NULL, O_TCP },
		{ "udp", required_argument, NULL, O_UDP },
		{ "ready-file", required_argument, NULL, O_READY },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "idle-timeout", required_argument, NULL, O_IDLE },
		{ "max-conns", required_argument, NULL, O_MAXCONNS },
		{ "help", no_argument, NULL, O_HELP },
		{ 0 },
	};
	uint64_t v;
	int opt;

	memset(cfg, 0, sizeof(*cfg));
	cfg->version = "v1";
	cfg->idle_ms = BM_ECHO_IDLE_MS;
	cfg->max_conns = BM_ECHO_MAX_CONNS;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case O_POD: cfg->pod = optarg; break;
		case O_NS: cfg->ns = optarg; break;
		case O_NODE: cfg->node = optarg; break;
		case O_VERSION: cfg->version = optarg; break;
		case O_READY: cfg->ready_file = optarg; break;
		case O_QUIET: cfg->quiet = true; break;
		case O_LABEL:
			if (add_label(cfg, optarg))
				return -EINVAL;
			break;
		case O_TCP:
			if (add_ports("--tcp", optarg, cfg->tcp, &cfg->ntcp))
				return -EINVAL;
			break;
		case O_UDP:
			if (add_ports("--udp", optarg, cfg->udp, &cfg->nudp))
				return -EINVAL;
			break;
		case O_IDLE:
			if (bm_parse_duration_ms(optarg, strlen(optarg), 1000, 86400000, &v) || !v) {
				fprintf(stderr, "bm-echo: --idle-timeout %s: expected 1ms..24h, e.g. 60s\n",
					optarg);
				return -EINVAL;
			}
			cfg->idle_ms = v;
			break;
		case O_MAXCONNS:
			if (bm_parse_u64(optarg, strlen(optarg), 1000000, &v) || !v) {
				fprintf(stderr, "bm-echo: --max-conns %s: expected 1..1000000\n", optarg);
				return -EINVAL;
			}
			cfg->max_conns = (unsigned)v;
			break;
		case O_HELP:
			fputs(usage, stdout);
			return 1;
		default:
			fprintf(stderr, "bm-echo: bad option %s\n%s", argv[optind - 1], usage);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bm-echo: unexpected argument %s\n%s", argv[optind], usage);
		return -EINVAL;
	}
	if (!cfg->pod || !cfg->ns || !cfg->node) {
		fprintf(stderr, "bm-echo: --pod, --namespace and --node are required\n%s", usage);
		return -EINVAL;
	}
	if (!cfg->ntcp && !cfg->nudp) {
		fprintf(stderr, "bm-echo: give at least one --tcp or --udp port\n%s", usage);
		return -EINVAL;
	}
	if (check_value("--pod", cfg->pod, false) || check_value("--namespace", cfg->ns, false) ||
	    check_value("--node", cfg->node, false) ||
	    check_value("--version", cfg->version, false))
		return -EINVAL;
	return 0;
}
