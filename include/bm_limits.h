/* Size limits of the kernel maps and tables, shared by bpf/ and user/.
 * Each is a default that a build may override with -D. */
#ifndef BM_LIMITS_H
#define BM_LIMITS_H

#ifndef BM_MAX_SVC
#define BM_MAX_SVC 16384          /* (VIP, port, proto) entries in bm_svc */
#endif
#ifndef BM_MAX_BACKENDS
#define BM_MAX_BACKENDS 65536     /* (address, port) entries in bm_backend; id 0 unused */
#endif
#ifndef BM_MAX_SETS
#define BM_MAX_SETS 32768         /* backend sets in bm_set; id 0 unused */
#endif
#ifndef BM_MAX_SLOTS
#define BM_MAX_SLOTS 262144       /* (set, index) -> backend entries in bm_slot */
#endif
#ifndef BM_MAX_ROUTES
#define BM_MAX_ROUTES 16384       /* weighted routes in bm_route; id 0 unused */
#endif
#ifndef BM_MAX_DESTS
#define BM_MAX_DESTS 16           /* weighted destinations per route */
#endif
#ifndef BM_MAX_SRCROUTES
#define BM_MAX_SRCROUTES 65536    /* (service port, workload) route overrides */
#endif
#ifndef BM_MAX_WORKLOADS
#define BM_MAX_WORKLOADS 16384    /* local workloads (cgroup id -> workload) */
#endif
#ifndef BM_MAGLEV_M
#define BM_MAGLEV_M 4099          /* Maglev ring size, prime; >= 100 x backends per set */
#endif
#ifndef BM_MAX_MAGLEV
#define BM_MAX_MAGLEV 256         /* Maglev rings; row 0 unused */
#endif
#ifndef BM_MAX_REVNAT
#define BM_MAX_REVNAT 65536       /* unconnected UDP reverse translations (LRU) */
#endif
#ifndef BM_MAX_SOCKS
#define BM_MAX_SOCKS 65536        /* sockets in the same-node bypass (bm_sockhash) */
#endif
#ifndef BM_MAX_CT
#define BM_MAX_CT 262144          /* TC path flow entries (two per flow), LRU */
#endif
#ifndef BM_MAX_ORIG
#define BM_MAX_ORIG 65536         /* connections to the agent's listener awaiting accept (LRU) */
#endif
#ifndef BM_MAX_SET_SIZE
#define BM_MAX_SET_SIZE 4096      /* backends in one set */
#endif

#endif
