/* Shared by dp.c and dp_link.c only: attaching programs through pinned links. */
#ifndef BM_DP_INTERNAL_H
#define BM_DP_INTERNAL_H

#include <stdint.h>

#include "dp.h"

struct bpf_program;
struct bpf_object;

/* Kernel ABI values newer than the system's 6.1 UAPI headers (bpf_link for sockmap: 6.10). */
#define BM_LINK_TYPE_SOCKMAP 14

int bm_dp_attach_cgroup(struct bm_dp *dp, struct bpf_program *prog, int cg_fd, uint64_t cg_id);
int bm_dp_attach_sockmap(struct bm_dp *dp, struct bpf_program *prog);
int bm_dp_attach_obj(struct bm_dp *dp, struct bpf_object *obj, int cg_fd, uint64_t cg_id);

#endif
