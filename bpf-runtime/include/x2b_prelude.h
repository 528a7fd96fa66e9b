/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Headers every generated program starts with: UAPI + libbpf, no vmlinux.h. */
#ifndef X2B_PRELUDE_H
#define X2B_PRELUDE_H

#include <linux/bpf.h>
#include <linux/in.h>

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "x2b_abi.h"
#include "x2b_abi_asserts.h"

#ifndef SOCK_STREAM
#define SOCK_STREAM 1
#endif
#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* Compiler ordering for records read by other programs (x2b_orig). */
#define x2b_barrier() asm volatile("" ::: "memory")
#define X2B_WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define X2B_READ_ONCE(x) (*(volatile __typeof__(x) *)&(x))

/* Returned by the listener match when no listener/filter chain applies. */
#define X2B_NO_ACTION 0xffffffffu
/* x2b_action_cluster: the connect must be refused. */
#define X2B_REFUSE 0xfffffffeu
/* x2b_route results besides an LB slot. */
#define X2B_SLOT_PASS (-1)
#define X2B_SLOT_REFUSE (-2)

#endif /* X2B_PRELUDE_H */
