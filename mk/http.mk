# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# HTTP routing: route-check with both engines over Envoy's router-check cases
# and the fixtures, and the differential tests (interpreter vs the compiled BPF
# in the kernel, 10,000 requests per route table of the corpus). Root runs the
# kernel half (BPF_PROG_TEST_RUN); without root it is skipped (CI=1: an error).
#   make http-test

X2B_HTTP_TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)

include $(X2B_HTTP_TOP)/mk/testrun.mk

.PHONY: http-test

http-test: testrun
	cd $(X2B_HTTP_TOP) && $(SWIFT) build -c $(CONFIG) --product xds2bpf
	XDS2BPF=$(X2B_HTTP_TOP)/.build/$(CONFIG)/xds2bpf $(X2B_HTTP_TOP)/Tests/http/run-route-check.sh
	cd $(X2B_HTTP_TOP) && $(SWIFT) build --build-tests && $(SWIFT) test --skip-build --filter HTTPRoutingTests
