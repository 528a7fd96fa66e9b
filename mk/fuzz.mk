# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# libFuzzer harness for the loader's bundle reading and update deltas (Tests/fuzz/loader); included by the top Makefile.
#   make fuzz-loader [FUZZ_SECONDS=60] [FUZZ_JOBS=1 | FUZZ_FORK=N]   build, then fuzz from the seeds (+ earlier finds)
#                    [FUZZ_RUNS=N]                     stop after N executions (or FUZZ_SECONDS, first)
#   make fuzz-loader-replay                             run every seed and regression once (a test)
#   make fuzz-loader-seeds BUNDLE=dir                   rewrite the seeds from a real bundle
#   make loader-test-sanitized                          (root) the kernel tests with an ASan+UBSan loader
# Crashes land in .build-fuzz/loader/crashes/; minimise one with
#   .build-fuzz/loader/fuzz_bundle -minimize_crash=1 -runs=10000 CRASH
# and add it to Tests/fuzz/loader/regressions/ with the fix.

X2B_FUZZ_TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
X2B_FUZZ_SRC := $(X2B_FUZZ_TOP)/Tests/fuzz/loader
X2B_FUZZ_OUT := $(X2B_FUZZ_TOP)/.build-fuzz/loader
X2B_FUZZ_LOADER := $(X2B_FUZZ_TOP)/bpf-runtime/loader
FUZZ_CLANG ?= $(firstword $(wildcard /opt/swift/usr/bin/clang) clang)
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
# Empty: no execution bound, only FUZZ_SECONDS.
FUZZ_RUNS ?=
X2B_FUZZ_RUNS = $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS))
# FUZZ_FORK=N: one run in N worker processes (libFuzzer's fork mode: one corpus, one count of
# executions, FUZZ_RUNS and FUZZ_SECONDS for the whole run, the first crash stops it).
# FUZZ_JOBS=N: N independent runs, each with its own count.
FUZZ_FORK ?=
X2B_FUZZ_PAR = $(if $(FUZZ_FORK),-fork=$(FUZZ_FORK),$(if $(filter-out 1,$(FUZZ_JOBS)),-jobs=$(FUZZ_JOBS) -workers=$(FUZZ_JOBS)))
X2B_FUZZ_BIN := $(X2B_FUZZ_OUT)/fuzz_bundle
X2B_FUZZ_PB := $(X2B_FUZZ_LOADER)/gen/xds2bpf/manifest.pb-c.c
X2B_FUZZ_CFLAGS = -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer \
	-I$(X2B_FUZZ_LOADER)/gen -I$(X2B_FUZZ_LOADER) -I$(X2B_FUZZ_TOP)/bpf-runtime/abi \
	$(shell pkg-config --cflags libprotobuf-c libcrypto libbpf)
X2B_FUZZ_LIBS = $(shell pkg-config --libs libprotobuf-c libcrypto) $(if $(wildcard $(dir $(FUZZ_CLANG))ld.lld),-fuse-ld=lld)
X2B_FUZZ_SRCS := $(X2B_FUZZ_SRC)/fuzz_bundle.c $(X2B_FUZZ_LOADER)/bundle.c $(X2B_FUZZ_LOADER)/tar.c \
	$(X2B_FUZZ_LOADER)/delta.c $(X2B_FUZZ_PB)

.PHONY: fuzz-loader fuzz-loader-build fuzz-loader-replay fuzz-loader-seeds

$(X2B_FUZZ_PB):
	$(MAKE) -C $(X2B_FUZZ_LOADER) $(X2B_FUZZ_PB)

$(X2B_FUZZ_BIN): $(X2B_FUZZ_SRCS) $(X2B_FUZZ_LOADER)/loader.h
	@mkdir -p $(X2B_FUZZ_OUT)
	$(FUZZ_CLANG) $(X2B_FUZZ_CFLAGS) $(X2B_FUZZ_SRCS) $(X2B_FUZZ_LIBS) -o $@

fuzz-loader-build: $(X2B_FUZZ_BIN)

# The working corpus starts from the committed seeds and regressions and keeps what it finds.
fuzz-loader: $(X2B_FUZZ_BIN)
	@mkdir -p $(X2B_FUZZ_OUT)/corpus $(X2B_FUZZ_OUT)/crashes
	cd $(X2B_FUZZ_OUT) && ASAN_OPTIONS=detect_leaks=1 ./fuzz_bundle -max_total_time=$(FUZZ_SECONDS) $(X2B_FUZZ_RUNS) \
		-max_len=262144 -rss_limit_mb=2048 -timeout=10 $(X2B_FUZZ_PAR) \
		-print_final_stats=1 -artifact_prefix=$(X2B_FUZZ_OUT)/crashes/ \
		corpus $(X2B_FUZZ_SRC)/seeds $(X2B_FUZZ_SRC)/regressions

fuzz-loader-replay: $(X2B_FUZZ_BIN)
	$(X2B_FUZZ_SRC)/replay.sh $(X2B_FUZZ_BIN)

fuzz-loader-seeds:
	@test -n "$(BUNDLE)" || { echo "usage: make fuzz-loader-seeds BUNDLE=path/to/bundle" >&2; exit 2; }
	python3 $(X2B_FUZZ_SRC)/make-seeds.py $(BUNDLE) $(X2B_FUZZ_SRC)/seeds

# The whole loader under ASan + UBSan (any report aborts), driven by the kernel tests (root):
#   make loader-test-sanitized [LOADER_TESTS="basic rejects bundle_checks tar"]
X2B_SAN_BIN := $(X2B_FUZZ_TOP)/.build-fuzz/loader-san/xds2bpf-loader
LOADER_TESTS ?= basic rejects bundle_checks tar attach_kinds update
.PHONY: loader-sanitized loader-test-sanitized

$(X2B_SAN_BIN): $(wildcard $(X2B_FUZZ_LOADER)/*.c $(X2B_FUZZ_LOADER)/*.h) $(X2B_FUZZ_PB)
	@mkdir -p $(dir $@)
	$(FUZZ_CLANG) -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=address,undefined -fno-sanitize-recover=all \
		-fno-omit-frame-pointer -I$(X2B_FUZZ_LOADER)/gen -I$(X2B_FUZZ_LOADER) -I$(X2B_FUZZ_TOP)/bpf-runtime/abi \
		$(shell pkg-config --cflags libbpf libprotobuf-c libcrypto) $(filter %.c,$^) \
		$(shell pkg-config --libs libbpf libprotobuf-c libcrypto) -lresolv \
		$(if $(wildcard $(dir $(FUZZ_CLANG))ld.lld),-fuse-ld=lld) -o $@

loader-sanitized: $(X2B_SAN_BIN)

loader-test-sanitized: $(X2B_SAN_BIN)
	E2E_LOADER=$(X2B_SAN_BIN) ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
		$(X2B_FUZZ_TOP)/Tests/loader/run.sh $(LOADER_TESTS)

# libFuzzer harness for the compiler's front end, in process (Sources/FrontendFuzz: parse,
# resolve, lower, plan, emit; no clang), built by SwiftPM with -sanitize=fuzzer,address into
# its own scratch path (never by `swift build --product xds2bpf` or the test bundle).
#   make fuzz-frontend [FUZZ_SECONDS=60] [FUZZ_JOBS=1]   build, then fuzz from the seeds (+ earlier finds)
#   make fuzz-frontend-replay                             run every seed and regression once (a test)
#   make fuzz-frontend-dict                               regenerate Tests/fuzz/frontend/xds.dict from proto/
#   make fuzz-frontend-campaign FUZZ_SECONDS=N            continue the 10-million campaign over invocations
#                                                         (scripts/fuzz-campaign.sh; --status for the ledger)
#   make fuzz [FUZZ_SECONDS=60]                           the loader's, the front end's and the HTTP parser's fuzzers, one after the other
# Seeds (Tests/Fixtures, examples/, the shared corpus from XDS2BPF_CORPUS) are written into
# .build-fuzz/frontend/seeds at build time; crashes land in .build-fuzz/frontend/crashes/.
# Minimise one with
#   .build-fuzz/swift/release/FrontendFuzz -minimize_crash=1 -runs=20000 CRASH
# and add it to Tests/fuzz/frontend/regressions/ with the fix.
X2B_FF_SRC := $(X2B_FUZZ_TOP)/Tests/fuzz/frontend
X2B_FF_OUT := $(X2B_FUZZ_TOP)/.build-fuzz/frontend
X2B_FF_SCRATCH := $(X2B_FUZZ_TOP)/.build-fuzz/swift
FUZZ_SWIFT_CONFIG ?= release
# Longer inputs are truncated while fuzzing (the replay runs every seed whole): short ones run faster.
FUZZ_FRONTEND_MAX_LEN ?= 16384
X2B_FF_BIN := $(X2B_FF_SCRATCH)/$(FUZZ_SWIFT_CONFIG)/FrontendFuzz
X2B_FF_SWIFT ?= $(firstword $(wildcard /opt/swift/usr/bin/swift) swift)
.PHONY: fuzz fuzz-frontend fuzz-frontend-build fuzz-frontend-replay fuzz-frontend-seeds fuzz-frontend-dict fuzz-frontend-campaign

# SwiftPM decides what to rebuild.
fuzz-frontend-build:
	cd $(X2B_FUZZ_TOP) && $(X2B_FF_SWIFT) build -c $(FUZZ_SWIFT_CONFIG) --product FrontendFuzz --scratch-path $(X2B_FF_SCRATCH) \
		-Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING

fuzz-frontend-seeds:
	$(X2B_FF_SRC)/make-seeds.sh $(X2B_FF_OUT)/seeds

fuzz-frontend-dict:
	python3 $(X2B_FF_SRC)/make-dict.py $(X2B_FUZZ_TOP)/proto > $(X2B_FF_SRC)/xds.dict

fuzz-frontend: fuzz-frontend-build fuzz-frontend-seeds
	@mkdir -p $(X2B_FF_OUT)/corpus $(X2B_FF_OUT)/crashes
	cd $(X2B_FF_OUT) && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(X2B_FF_SRC)/lsan.supp \
		$(X2B_FF_BIN) -max_total_time=$(FUZZ_SECONDS) $(X2B_FUZZ_RUNS) -dict=$(X2B_FF_SRC)/xds.dict \
		-max_len=$(FUZZ_FRONTEND_MAX_LEN) -rss_limit_mb=3072 -timeout=20 $(X2B_FUZZ_PAR) \
		-print_final_stats=1 -artifact_prefix=$(X2B_FF_OUT)/crashes/ \
		corpus seeds $(X2B_FF_SRC)/regressions

fuzz-frontend-campaign:
	$(X2B_FUZZ_TOP)/scripts/fuzz-campaign.sh --seconds $(FUZZ_SECONDS)

fuzz-frontend-replay: fuzz-frontend-build fuzz-frontend-seeds
	$(X2B_FF_SRC)/replay.sh $(X2B_FF_BIN) $(X2B_FF_OUT)/seeds

# libFuzzer harness for the BPF HTTP head parser compiled for user space (Tests/fuzz/http):
# bpf-runtime/include/x2b_http.h itself, through a golden x2b_routes.h (the compiler's own map
# definitions and inline scans) and the helper shim Tests/fuzz/shim/x2b_user_bpf.h.
#   make fuzz-http [FUZZ_SECONDS=60] [FUZZ_JOBS=1] [FUZZ_RUNS=N]   build, then fuzz from the seeds
#   make fuzz-http-replay                                          every seed and regression once (a test)
# Seeds (Tests/fuzz/http/make-seeds.py: Tests/vm/http-cases.sh, the router-check inputs of the
# fixtures and of the shared corpus, the head forms the parser decides on) are written into
# .build-fuzz/http/seeds; crashes land in .build-fuzz/http/crashes/. Minimise one with
#   .build-fuzz/http/fuzz_http -minimize_crash=1 -runs=20000 CRASH
# and add it to Tests/fuzz/http/regressions/ with the fix.
X2B_FH_SRC := $(X2B_FUZZ_TOP)/Tests/fuzz/http
X2B_FH_OUT := $(X2B_FUZZ_TOP)/.build-fuzz/http
X2B_FH_BIN := $(X2B_FH_OUT)/fuzz_http
# The generated header the harness includes: one with header matchers, automata and inline scans.
FUZZ_HTTP_ROUTES ?= $(X2B_FUZZ_TOP)/Tests/Goldens/http-HeaderMatchers
X2B_FH_CFLAGS = -g -O1 -std=gnu11 -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer \
	-I$(X2B_FUZZ_TOP)/Tests/fuzz/shim -I$(X2B_FUZZ_TOP)/bpf-runtime/include -I$(X2B_FUZZ_TOP)/bpf-runtime/abi \
	-I$(FUZZ_HTTP_ROUTES)
.PHONY: fuzz-http fuzz-http-build fuzz-http-seeds fuzz-http-replay

$(X2B_FH_BIN): $(X2B_FH_SRC)/fuzz_http.c $(X2B_FUZZ_TOP)/Tests/fuzz/shim/x2b_user_bpf.h \
		$(wildcard $(X2B_FUZZ_TOP)/bpf-runtime/include/*.h $(X2B_FUZZ_TOP)/bpf-runtime/abi/*.h) \
		$(FUZZ_HTTP_ROUTES)/x2b_routes.h
	@mkdir -p $(X2B_FH_OUT)
	$(FUZZ_CLANG) $(X2B_FH_CFLAGS) $(X2B_FH_SRC)/fuzz_http.c \
		$(if $(wildcard $(dir $(FUZZ_CLANG))ld.lld),-fuse-ld=lld) -o $@

fuzz-http-build: $(X2B_FH_BIN)

fuzz-http-seeds:
	source $(X2B_FUZZ_TOP)/scripts/env.sh && python3 $(X2B_FH_SRC)/make-seeds.py $(X2B_FH_OUT)/seeds "$$CORPUS"

fuzz-http: $(X2B_FH_BIN) fuzz-http-seeds
	@mkdir -p $(X2B_FH_OUT)/corpus $(X2B_FH_OUT)/crashes
	cd $(X2B_FH_OUT) && ASAN_OPTIONS=detect_leaks=1 ./fuzz_http -max_total_time=$(FUZZ_SECONDS) $(X2B_FUZZ_RUNS) \
		-dict=$(X2B_FH_SRC)/http.dict -max_len=1100 -timeout=10 \
		$(X2B_FUZZ_PAR) \
		-print_final_stats=1 -artifact_prefix=$(X2B_FH_OUT)/crashes/ \
		corpus seeds $(X2B_FH_SRC)/regressions

fuzz-http-replay: $(X2B_FH_BIN) fuzz-http-seeds
	$(X2B_FH_SRC)/replay.sh $(X2B_FH_BIN) $(X2B_FH_OUT)/seeds

fuzz: fuzz-loader fuzz-frontend fuzz-http
