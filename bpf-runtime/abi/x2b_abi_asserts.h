/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Layout checks for x2b_abi.h; the same table is tested from Swift (ABILayoutTests). */
#ifndef X2B_ABI_ASSERTS_H
#define X2B_ABI_ASSERTS_H

#include "x2b_abi.h"

#define X2B_ASSERT_SIZE(t, n) _Static_assert(sizeof(struct t) == (n), "unexpected size of '" #t "'")
#define X2B_ASSERT_OFF(t, f, n) _Static_assert(__builtin_offsetof(struct t, f) == (n), "unexpected offset of '" #t "." #f "'")

X2B_ASSERT_SIZE(x2b_lsn_key, 24);
X2B_ASSERT_OFF(x2b_lsn_key, family, 4);
X2B_ASSERT_OFF(x2b_lsn_key, port, 6);
X2B_ASSERT_OFF(x2b_lsn_key, addr, 8);
X2B_ASSERT_SIZE(x2b_action, 24);
X2B_ASSERT_SIZE(x2b_lsn_addr, 20);
X2B_ASSERT_OFF(x2b_lsn_addr, port, 2);
X2B_ASSERT_OFF(x2b_lsn_addr, addr, 4);
X2B_ASSERT_SIZE(x2b_lsn_slot, 64);
X2B_ASSERT_OFF(x2b_lsn_slot, action, 20);
X2B_ASSERT_OFF(x2b_lsn_slot, act, 24);
X2B_ASSERT_OFF(x2b_lsn_slot, range, 48);
X2B_ASSERT_OFF(x2b_lsn_slot, connects, 56);
X2B_ASSERT_SIZE(x2b_lsn4_slot, 32);
X2B_ASSERT_OFF(x2b_lsn4_slot, addr, 4);
X2B_ASSERT_OFF(x2b_lsn4_slot, action, 8);
X2B_ASSERT_OFF(x2b_lsn4_slot, range, 16);
X2B_ASSERT_OFF(x2b_lsn4_slot, connects, 24);
X2B_ASSERT_SIZE(x2b_ep4, 16);
X2B_ASSERT_OFF(x2b_ep4, port, 4);
X2B_ASSERT_OFF(x2b_ep4, family, 6);
X2B_ASSERT_OFF(x2b_ep4, connects, 8);
X2B_ASSERT_SIZE(x2b_astat, 16);
X2B_ASSERT_OFF(x2b_astat, redirected, 8);
X2B_ASSERT_SIZE(x2b_wcluster, 8);
X2B_ASSERT_SIZE(x2b_level, 20);
X2B_ASSERT_SIZE(x2b_cluster, 96);
X2B_ASSERT_OFF(x2b_cluster, levels, 16);
X2B_ASSERT_SIZE(x2b_endpoint, 32);
X2B_ASSERT_OFF(x2b_endpoint, weight, 4);
X2B_ASSERT_OFF(x2b_endpoint, addr, 8);
X2B_ASSERT_SIZE(x2b_slot, 8);
X2B_ASSERT_SIZE(x2b_sock, 32);
X2B_ASSERT_SIZE(x2b_epkey, 20);
X2B_ASSERT_OFF(x2b_epkey, port, 2);
X2B_ASSERT_OFF(x2b_epkey, addr, 4);
X2B_ASSERT_SIZE(x2b_scratch, 16);
X2B_ASSERT_SIZE(x2b_req, 4104);
X2B_ASSERT_OFF(x2b_req, head, 8);
X2B_ASSERT_SIZE(x2b_htable, 88);
X2B_ASSERT_OFF(x2b_htable, vhost_header, 16);
X2B_ASSERT_OFF(x2b_htable, sfx_lens, 24);
X2B_ASSERT_OFF(x2b_htable, pfx_lens, 56);
X2B_ASSERT_SIZE(x2b_hdom_key, 16);
X2B_ASSERT_OFF(x2b_hdom_key, hash, 8);
X2B_ASSERT_SIZE(x2b_hvhost, 16);
X2B_ASSERT_SIZE(x2b_hroute, 32);
X2B_ASSERT_OFF(x2b_hroute, hash, 24);
X2B_ASSERT_SIZE(x2b_hcond, 32);
X2B_ASSERT_OFF(x2b_hcond, hash, 8);
X2B_ASSERT_SIZE(x2b_dfa, 12);
X2B_ASSERT_SIZE(x2b_dcls, 256);
X2B_ASSERT_SIZE(x2b_hpindex, 8);
X2B_ASSERT_SIZE(x2b_hcand, 32);
X2B_ASSERT_SIZE(x2b_hwcluster, 8);
X2B_ASSERT_SIZE(x2b_hcn_key, 16);
X2B_ASSERT_SIZE(x2b_hresult, 16);

#endif
