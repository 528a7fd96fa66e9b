# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# x2b-testrun: runs HTTP requests through the compiled route matcher with
# BPF_PROG_TEST_RUN (route-check --engine bpf, the HTTP differential tests).
#   make testrun         build bpf-runtime/testrun/x2b-testrun (libbpf-dev)
#   make testrun-clean

X2B_TESTRUN_TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
X2B_TESTRUN_DIR := $(X2B_TESTRUN_TOP)/bpf-runtime/testrun
X2B_TESTRUN := $(X2B_TESTRUN_DIR)/x2b-testrun
# `=`, not `:=`: pkg-config runs when the recipe does, after `make deps` installed libbpf-dev.
X2B_TESTRUN_CFLAGS = -O2 -g -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE \
	$(shell pkg-config --cflags libbpf)
X2B_TESTRUN_LDLIBS = $(shell pkg-config --libs libbpf)

.PHONY: testrun testrun-clean

testrun: $(X2B_TESTRUN)

$(X2B_TESTRUN): $(X2B_TESTRUN_DIR)/x2b-testrun.c $(X2B_TESTRUN_TOP)/bpf-runtime/abi/x2b_abi.h
	$(CC) $(X2B_TESTRUN_CFLAGS) -o $@ $< $(X2B_TESTRUN_LDLIBS)

testrun-clean:
	rm -f $(X2B_TESTRUN)
