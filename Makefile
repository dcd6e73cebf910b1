# bpfmesh build. Outputs go under .output/ (SAN=1: .output/san/, an ASan+UBSan build).
#   make            kernel objects, skeletons, bpfmesh-agent, bpfmeshctl, lab tools
#   make SAN=1      the same userspace built with -fsanitize=address,undefined
#   make tests      unit and BPF test binaries (cmocka)
#   make fuzz       libFuzzer targets (clang)
#   make bench      the data-plane benchmark (bench/run.sh); make bench-smoke: ~30 s check
.DELETE_ON_ERROR:
.SUFFIXES:

CC       ?= gcc
CLANG    ?= clang
BPFTOOL  ?= bpftool
SAN      ?= 0

ROOT     := $(CURDIR)
OUT      ?= .output
DEFS     ?=   # e.g. DEFS=-DBM_MAX_SVC=8192 OUT=.output/variant: a build with another map layout
ifeq ($(SAN),1)
UOUT     := $(OUT)/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
UOUT     := $(OUT)
SANFLAGS :=
endif
BIN      := $(UOUT)/bin

LLHTTP_DIR ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp

WARN     := -Wall -Wextra -Werror
CFLAGS   ?= -O2 -g
CFLAGS   += $(WARN) $(DEFS) -std=gnu11 -D_GNU_SOURCE -Iinclude -Iuser/lib -I$(OUT) -I$(LLHTTP_INC) \
	    $(SANFLAGS) -MMD -MP
LDFLAGS  += $(SANFLAGS)
LIBS     := -lbpf -lelf -lz -lyaml -lmnl -lpcre2-8 -lnghttp2

ARCH     := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BPFCFLAGS := -target bpf -O2 -g -Wall -Werror $(DEFS) -D__TARGET_ARCH_$(ARCH) -Iinclude -Ibpf -I$(OUT)

BPF_SRC   := $(wildcard bpf/*.bpf.c)
BPF_OBJ   := $(patsubst bpf/%.bpf.c,$(OUT)/bpf/%.bpf.o,$(BPF_SRC))
SKELS     := $(patsubst bpf/%.bpf.c,$(OUT)/%.skel.h,$(BPF_SRC))

LIB_SRC   := $(wildcard user/lib/*.c)
LIB_OBJ   := $(patsubst %.c,$(UOUT)/obj/%.o,$(LIB_SRC))
LIB_A     := $(UOUT)/libbpfmesh.a

LLHTTP_SRC := $(wildcard $(LLHTTP_DIR)/*.c)
ifeq ($(LLHTTP_SRC),)
ifeq ($(filter clean help,$(MAKECMDGOALS)),)
$(error no llhttp sources in $(LLHTTP_DIR): install node-llhttp (scripts/deps.sh))
endif
endif
LLHTTP_OBJ := $(patsubst $(LLHTTP_DIR)/%.c,$(UOUT)/obj/llhttp/%.o,$(LLHTTP_SRC))
LLHTTP_A   := $(UOUT)/libllhttp.a

AGENT_SRC := $(wildcard user/agent/*.c)
CTL_SRC   := $(wildcard tools/bpfmeshctl/*.c)
ECHO_SRC  := $(wildcard tools/echo/*.c)
LAB_SRC   := $(wildcard tools/lab/*.c)

PROGS := $(BIN)/bpfmesh-agent $(BIN)/bpfmeshctl
ifneq ($(ECHO_SRC),)
PROGS += $(BIN)/bm-echo
endif
ifneq ($(LAB_SRC),)
PROGS += $(BIN)/bm-lab-render
endif

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
BPFT_SRC  := $(wildcard tests/bpf/test_*.c)
TOOLT_SRC := $(wildcard tests/tools/*.c)
TEST_BINS := $(patsubst tests/%.c,$(UOUT)/tests/%,$(UNIT_SRC) $(BPFT_SRC) $(TOOLT_SRC))

FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(OUT)/fuzz/%,$(FUZZ_SRC))

.PHONY: all tests fuzz clean bpf
.SECONDARY:
all: $(PROGS)
bpf: $(SKELS)
tests: $(TEST_BINS)
fuzz: $(FUZZ_BINS)

# ---- kernel side ----
$(OUT)/vmlinux.h:
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(OUT)/bpf/%.bpf.o: bpf/%.bpf.c $(OUT)/vmlinux.h $(wildcard bpf/lib/*.h include/*.h)
	@mkdir -p $(@D)
	$(CLANG) $(BPFCFLAGS) -c $< -o $@

$(OUT)/%.skel.h: $(OUT)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name bm_$(subst -,_,$*) > $@

# ---- userspace ----
$(UOUT)/obj/%.o: %.c | $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(UOUT)/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(@D)
	$(CC) -O2 -g -DLLHTTP_STRICT_MODE=1 -I$(LLHTTP_INC) $(SANFLAGS) -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(LLHTTP_A): $(LLHTTP_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BIN)/bpfmesh-agent: $(patsubst %.c,$(UOUT)/obj/%.o,$(AGENT_SRC)) $(LIB_A) $(LLHTTP_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BIN)/bpfmeshctl: $(patsubst %.c,$(UOUT)/obj/%.o,$(CTL_SRC)) $(LIB_A) $(LLHTTP_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BIN)/bm-echo: $(patsubst %.c,$(UOUT)/obj/%.o,$(ECHO_SRC)) $(LLHTTP_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ -lnghttp2

$(BIN)/bm-lab-render: $(patsubst %.c,$(UOUT)/obj/%.o,$(LAB_SRC)) $(LIB_A) $(LLHTTP_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)


# ---- tests ----
$(UOUT)/tests/%: $(UOUT)/obj/tests/%.o $(LIB_A) $(LLHTTP_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

# libFuzzer: the library rebuilt with clang and coverage instrumentation.
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	      -std=gnu11 -D_GNU_SOURCE \
	      -Iinclude -Iuser/lib -I$(OUT) -I$(LLHTTP_INC)
$(OUT)/fuzz/%: tests/fuzz/%.c $(LIB_SRC) $(wildcard user/lib/*.h include/*.h tests/fuzz/*.h) | $(SKELS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_FLAGS) -DLLHTTP_STRICT_MODE=1 -o $@ $< $(LIB_SRC) $(LLHTTP_SRC) $(LIBS)

# The data-plane benchmark (bench/README.md, docs/bench.md): every model side by side.
.PHONY: bench bench-smoke
bench: all
	bench/run.sh
bench-smoke: all
	bench/run.sh --smoke

clean:
	rm -rf $(OUT)

-include $(shell find $(UOUT)/obj -name '*.d' 2>/dev/null)
