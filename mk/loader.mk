# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The node-side loader (bpf-runtime/loader) and its tests; included by the top Makefile.
#   make loader         build bpf-runtime/loader/xds2bpf-loader
#   make loader-test    root: kernel tests in a private netns + test cgroup (Tests/loader/run.sh)
#   make loader-clean

X2B_LOADER_TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
X2B_LOADER_DIR := $(X2B_LOADER_TOP)/bpf-runtime/loader

.PHONY: loader loader-test loader-clean

loader:
	$(MAKE) -C $(X2B_LOADER_DIR)

loader-test: loader
	$(X2B_LOADER_TOP)/Tests/loader/run.sh

loader-clean:
	$(MAKE) -C $(X2B_LOADER_DIR) clean
