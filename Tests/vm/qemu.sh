#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Boots KERNEL with INITRD under qemu (TCG; KVM is not usable on these hosts)
# with a hard timeout; the serial console goes to LOG.  Exit status: qemu's, or
# 124 on timeout.  Pass/fail is decided by the caller from markers in LOG.
#   Tests/vm/qemu.sh KERNEL INITRD LOG TIMEOUT_S [KERNEL-ARGS...]
set -euo pipefail
kernel=$1 initrd=$2 log=$3 limit=$4
shift 4
: >"$log"
exec timeout -k 5 "$limit" qemu-system-x86_64 \
	-accel tcg -cpu max -smp 1 -m "${X2B_VM_MEM:-512}" \
	-no-reboot -display none -serial "file:$log" -monitor none -nodefaults \
	-kernel "$kernel" -initrd "$initrd" \
	-append "console=ttyS0 panic=-1 loglevel=4 $*"
