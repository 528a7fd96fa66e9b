# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Benchmarks (scripts/bench.sh, bench/); the top Makefile's `bench` target runs the full mode.
#   make bench-quick     smoke run: small sizes, few repetitions (.bench/quick/BENCHMARKS.md)
#   make bench-helpers   build the C helpers into .bench/bin (bench/Makefile)
#   make bench-clean     remove .bench/ (generated snapshots, bundles, raw results)

X2B_BENCH_TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)

.PHONY: bench-quick bench-helpers bench-clean

bench-quick: build loader
	XDS2BPF=$(abspath $(XDS2BPF)) $(X2B_BENCH_TOP)/scripts/bench.sh --quick

bench-helpers:
	$(MAKE) -C $(X2B_BENCH_TOP)/bench OUT=$(X2B_BENCH_TOP)/.bench/bin

bench-clean:
	rm -rf $(X2B_BENCH_TOP)/.bench

# Live updates (`xds2bpf watch` at 10k services): the "watch" section of BENCHMARKS.md.
.PHONY: bench-watch
bench-watch: build loader
	XDS2BPF=$(abspath $(XDS2BPF)) $(X2B_BENCH_TOP)/scripts/bench-watch.sh
