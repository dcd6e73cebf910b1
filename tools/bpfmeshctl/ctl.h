/* bpfmeshctl: shared declarations of its subcommands. */
#ifndef BM_CTL_H
#define BM_CTL_H

struct bm_ctl {
	const char *node;
	const char *bpffs;
	const char *state_dir;
	int json;
};

int bm_ctl_bpf(struct bm_ctl *ctl, int argc, char **argv);

#endif
