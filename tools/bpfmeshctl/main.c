/* bpfmeshctl: the operator's CLI. `bpf` decodes the node's pinned maps; `version` prints the
 * build's ABI. Options come before the subcommand. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bm_svc.h"
#include "ctl.h"
#include "log.h"

static void usage(FILE *fp)
{
	fprintf(fp, "usage: bpfmeshctl [--node NAME] [--bpffs DIR] [--state-dir DIR] [-o json] COMMAND\n"
		    "commands:\n"
		    "  bpf services      service addresses and how each picks a backend\n"
		    "  bpf backends      backend ids, addresses, open connections\n"
		    "  bpf sets          backend sets: size, algorithm, members\n"
		    "  bpf routes        weighted routes over sets\n"
		    "  bpf workloads     local pods the hooks recognise (cgroup id -> workload)\n"
		    "  bpf srcroutes     per-caller routes (VirtualService sourceLabels)\n"
		    "  bpf ct            flows the TC fallback translated\n"
		    "  bpf bypass        sockets of the same-node bypass and their state\n"
		    "  bpf stats         datapath counters\n"
		    "  bpf meta          version record of the pins\n"
		    "  version           versions of this build\n"
		    "The node defaults to the only directory under <bpffs>/bpfmesh.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "node", required_argument, NULL, 'n' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct bm_ctl ctl = { .bpffs = "/sys/fs/bpf" };
	int c;

	while ((c = getopt_long(argc, argv, "+ho:", opts, NULL)) != -1) {
		switch (c) {
		case 'n': ctl.node = optarg; break;
		case 'b': ctl.bpffs = optarg; break;
		case 's': ctl.state_dir = optarg; break;
		case 'o':
			if (strcmp(optarg, "json")) {
				fprintf(stderr, "bpfmeshctl: unknown output %s (json)\n", optarg);
				return 2;
			}
			ctl.json = 1;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	bm_log_libbpf();
	if (!strcmp(argv[optind], "bpf"))
		return bm_ctl_bpf(&ctl, argc - optind - 1, argv + optind + 1);
	if (!strcmp(argv[optind], "version")) {
		printf("bpfmeshctl ABI %u\n", BM_ABI_VERSION);
		return 0;
	}
	fprintf(stderr, "bpfmeshctl: unknown command %s\n", argv[optind]);
	usage(stderr);
	return 2;
}
