# ivshmem-bench: host/guest shared-memory benchmark over QEMU's ivshmem.
#
#   make            build everything into build/
#   make test       set up what is missing (packages, build, VM) and run the benchmark
#   make check      install test needs, build, run the test suite
#   make help       list the targets
#
# SANITIZE=1 builds with AddressSanitizer and UBSan (host programs and tests).
#   make fuzz FUZZ_SECONDS=600   run each libFuzzer target that long (clang)

VERSION := $(shell git describe --always --dirty --tags 2>/dev/null || echo unknown)
BUILD   ?= build
CC      ?= cc

CFLAGS_PROJECT := -std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE \
                  -Icommon -Iserver -Iworkloads -I$(BUILD)
# Each object records the headers it includes in a .d file beside it.
DEPFLAGS       := -MMD -MP
LDLIBS_PROJECT := -lcrypto -lpthread -lm
ifeq ($(SANITIZE),1)
CFLAGS_PROJECT += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS_SAN    := -fsanitize=address,undefined
endif

LIB_SRC   := $(wildcard common/*.c workloads/*.c) $(filter-out server/main.c,$(wildcard server/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB       := $(BUILD)/libivb.a
TEST_SRC  := $(wildcard tests/*.c)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
# Programs the tests run that are not tests themselves.
HELPER_SRC := $(wildcard tests/helpers/*.c)
HELPER_BIN := $(HELPER_SRC:tests/helpers/%.c=$(BUILD)/tests/helpers/%)
# The guest programs' library: the linker takes from it only what each uses.
GUEST_LIB := $(BUILD)/libivb-static.a
GUEST_OBJ := $(patsubst %.c,$(BUILD)/obj-static/%.o,$(wildcard common/*.c workloads/*.c) \
             server/ivshmem_client.c)
PROGRAMS  := $(BUILD)/host_writer $(BUILD)/guest_reader $(BUILD)/guest/host_writer \
             $(BUILD)/eventfd_pingpong $(BUILD)/transport_bench $(BUILD)/guest/transport_bench \
             $(BUILD)/chain_sink
ifneq ($(wildcard server/main.c),)
PROGRAMS  += $(BUILD)/ivshmem_server
endif

# Keep the objects of chained rules (tests, tools) between runs.
.SECONDARY:

.PHONY: all test check bench soak analyze initramfs deps clean help stop status fuzz fuzz-build FORCE

all: $(PROGRAMS) $(TEST_BIN) $(HELPER_BIN)

help:
	@echo "Targets:"
	@echo "  all        build host_writer, guest_reader (static), the server and the tests"
	@echo "  test       set up whatever is missing (packages, build, VM) and run the benchmark"
	@echo "  check      install what the tests need, build, run the test suite"
	@echo "  bench      latency host-only and in the VM in one run, with the ratio"
	@echo "  soak       long runs that must stay clean (10,000 frames, 10M round trips, ...)"
	@echo "  analyze    statistics, plots and a report from results/"
	@echo "  initramfs  build the micro guest's initramfs"
	@echo "  deps       install the Debian packages the project needs"
	@echo "  stop       stop the VM (same as ./setup.sh stop)"
	@echo "  status     show what runs (same as ./setup.sh status)"
	@echo "  fuzz       fuzz the server, the client and the responder for FUZZ_SECONDS each (clang)"
	@echo "  clean      remove build/"
	@echo "Variables: SANITIZE=1 (ASan+UBSan), BUILD=dir, FUZZ_SECONDS=s; settings: see README.md"

# The version is compiled in; version.h is rewritten only when it changes.
$(BUILD)/version.h: FORCE
	@mkdir -p $(@D)
	@echo '#define IVB_VERSION "$(VERSION)"' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
FORCE:

# version.h must exist before the first compile; afterwards the .d files
# say who includes it.
$(BUILD)/obj/%.o: %.c | $(BUILD)/version.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_PROJECT) $(DEPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/host_writer: $(BUILD)/obj/host_writer.o $(LIB)
	$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS_PROJECT)

# Programs that run inside the guest, which has no shared libraries, are
# linked statically (OpenSSL included), never with sanitizers, against an
# archive from which each takes only the objects it uses: guest_reader
# never links the doorbell client in server/ (a guest rings through VFIO,
# vfio_irq.c). The initiator is built that way too (build/guest/host_writer),
# for runs where a guest initiates.
$(BUILD)/obj-static/%.o: %.c | $(BUILD)/version.h
	@mkdir -p $(@D)
	$(CC) $(filter-out -fsanitize% -fno-omit-frame-pointer,$(CFLAGS_PROJECT)) $(DEPFLAGS) $(CFLAGS) -c -o $@ $<
$(GUEST_LIB): $(GUEST_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^
$(BUILD)/guest_reader: $(BUILD)/obj-static/guest_reader.o $(GUEST_LIB)
	$(CC) -static $(LDFLAGS) -o $@ $^ -lcrypto -lpthread -lm
$(BUILD)/guest/host_writer: $(BUILD)/obj-static/host_writer.o $(GUEST_LIB)
	@mkdir -p $(@D)
	$(CC) -static $(LDFLAGS) -o $@ $^ -lcrypto -lpthread -lm

# The other channels' benchmark (transport_bench.c): on the host, and
# linked statically for the guest, where it serves.
$(BUILD)/transport_bench: $(BUILD)/obj/transport_bench.o $(LIB)
	$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS_PROJECT)
$(BUILD)/guest/transport_bench: $(BUILD)/obj-static/transport_bench.o $(GUEST_LIB)
	@mkdir -p $(@D)
	$(CC) -static $(LDFLAGS) -o $@ $^ -lcrypto -lpthread -lm

$(BUILD)/eventfd_pingpong: $(BUILD)/obj/tools/eventfd_pingpong.o $(LIB)
	$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS_PROJECT)

$(BUILD)/chain_sink: $(BUILD)/obj/tools/chain_sink.o $(LIB)
	$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS_PROJECT)

$(BUILD)/ivshmem_server: $(BUILD)/obj/server/main.o $(LIB)
	$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS_PROJECT)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS_PROJECT)

# libFuzzer targets (tests/fuzz/), built with clang, ASan and UBSan into
# $(BUILD)/fuzz/: the server's and the client's code and the clock they
# read. tests/fuzz.sh runs them briefly in make check; `make fuzz` runs
# them for FUZZ_SECONDS each, growing $(BUILD)/fuzz/corpus-<target>/ from
# the kept inputs in tests/fuzz/corpus/<target>/. A crash is written to
# $(BUILD)/fuzz/crash-<target>-*: once fixed, keep it as a regression
# input in tests/fuzz/corpus/<target>/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 300
FUZZ_CFLAGS  := -std=c11 -g -O1 -Wall -Wextra -Werror -D_GNU_SOURCE -Icommon -Iserver -Iworkloads -I$(BUILD) \
                -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_LIB_SRC := $(filter-out server/main.c,$(wildcard server/*.c)) $(wildcard common/*.c workloads/*.c)
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(BUILD)/fuzz/obj/%.o)
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN     := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(DEPFLAGS) -c -o $@ $<
$(BUILD)/fuzz/%: $(BUILD)/fuzz/obj/tests/fuzz/%.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS_PROJECT)

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(BUILD)/fuzz/corpus-$$t $(BUILD)/fuzz/tmp && \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s" && \
		TMPDIR=$(BUILD)/fuzz/tmp $(BUILD)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -close_fd_mask=2 \
			-artifact_prefix=$(BUILD)/fuzz/crash-$$t- \
			$(BUILD)/fuzz/corpus-$$t tests/fuzz/corpus/$$t || exit 1; \
	done

initramfs: $(BUILD)/guest_reader
	./setup.sh initramfs

deps:
	./setup.sh deps

test:
	./setup.sh
	./run_test.sh

check:
	./setup.sh deps
	$(MAKE) all
	tests/run.sh

bench:
	./setup.sh deps
	$(MAKE) all
	./run_test.sh --bench

soak:
	./setup.sh deps
	$(MAKE) all
	tools/soak.sh

analyze:
	/usr/bin/python3 analyze_results.py

stop:
	./setup.sh stop

status:
	./setup.sh status

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj $(BUILD)/obj-static $(BUILD)/fuzz/obj -name '*.d' 2>/dev/null)
