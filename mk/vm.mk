# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The defer-connect module (kernel/) and the VM tests (Tests/vm/); included by
# the top Makefile.  Kernel packages are downloaded with apt-get download and
# unpacked under .vm/ (git-ignored), never installed.
#   make module      kernel/xds2bpf_defer.ko against Debian's 6.12 cloud headers
#   make vmtest      module + test programs + busybox initramfs, qemu boots of
#                    6.12 (module, L4, HTTP, TLS) and 6.1 (L4): Tests/vm/run.sh
#                    (VMTEST_STEPS="phase-a l4-612 l4-61 http tls" to choose)
#   make soak-vm     HTTP soak through the module (SOAK_MINUTES, default 5; not part of
#                    make test): Tests/vm/run.sh soak-http, report in .vm/build/soak-http.md
#   make vm-clean    kbuild products and .vm/

X2B_VM_TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
X2B_VM_DIR ?= $(X2B_VM_TOP)/.vm
VMTEST_STEPS ?=

.PHONY: module vmtest soak-vm vm-fetch vm-clean

vm-fetch:
	X2B_VM_DIR=$(X2B_VM_DIR) $(X2B_VM_TOP)/Tests/vm/fetch.sh

module: vm-fetch
	. $(X2B_VM_DIR)/env && $(MAKE) -C $(X2B_VM_TOP)/kernel KDIR="$$X2B_KDIR"

vmtest: build loader
	X2B_VM_DIR=$(X2B_VM_DIR) XDS2BPF=$(X2B_VM_TOP)/.build/$(CONFIG)/xds2bpf \
		$(X2B_VM_TOP)/Tests/vm/run.sh $(VMTEST_STEPS)

soak-vm: build loader
	X2B_VM_DIR=$(X2B_VM_DIR) XDS2BPF=$(X2B_VM_TOP)/.build/$(CONFIG)/xds2bpf SOAK_MINUTES=$(or $(SOAK_MINUTES),5) \
		$(X2B_VM_TOP)/Tests/vm/run.sh soak-http

vm-clean:
	if [ -f $(X2B_VM_DIR)/env ]; then \
		. $(X2B_VM_DIR)/env && $(MAKE) -C $(X2B_VM_TOP)/kernel KDIR="$$X2B_KDIR" clean; fi
	rm -rf $(X2B_VM_DIR)
