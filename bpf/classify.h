/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A new flow's decision: the tuple-space walk of the active rule bank
 * (classify), the policy's link (pick_link), and whether the destination is
 * the host's own or one it would not forward (host_bound). Private to
 * clovis.bpf.c: it uses its maps and struct pkt (parse.h).
 */
#ifndef CLOVIS_BPF_CLASSIFY_H
#define CLOVIS_BPF_CLASSIFY_H

struct walk_ctx {
	struct clv_tuple *t;
	__u32 bank;
	__u32 n_shapes;
	__u32 found;
	struct clv_rule_val best;
};

static long walk_shape(__u32 i, void *data)
{
	struct walk_ctx *w = data;
	struct clv_rule_key k;
	struct clv_rule_val *v;
	struct clv_shape *sh;
	__u32 idx;

	if (i >= w->n_shapes)
		return 1;
	idx = w->bank * CLV_MAX_SHAPES + i;
	sh = bpf_map_lookup_elem(&clv_shapes, &idx);
	if (!sh)
		return 1;
	if (w->found && sh->min_priority >= w->best.priority)
		return 1; /* no later shape can beat the best hit */
	if (!clv_mask_tuple(sh, w->t, (__u8)w->bank, (__u8)i, &k))
		return 0;
	v = bpf_map_lookup_elem(&clv_rules, &k);
	if (v && (!w->found || v->priority < w->best.priority)) {
		w->best = *v;
		w->found = 1;
	}
	return 0;
}

/* Fills action/policy/rule of a new flow from the active bank. */
static __always_inline void classify(struct pkt *p, struct __sk_buff *skb, struct clv_flow *f)
{
	struct walk_ctx w = {.t = &p->t};
	struct clv_bank_meta *meta;
	__u32 zero = 0, *bank;
	__u64 iif_key;
	__u32 *iif;

	bank = bpf_map_lookup_elem(&clv_active, &zero);
	w.bank = bank ? (*bank & 1) : 0;
	meta = bpf_map_lookup_elem(&clv_meta, &w.bank);
	if (!meta)
		return;
	iif_key = ((__u64)w.bank << 32) | skb->ifindex;
	iif = bpf_map_lookup_elem(&clv_iifs, &iif_key);
	p->t.iif_id = iif ? *iif : 0;
	w.n_shapes = meta->n_shapes;
	bpf_loop(CLV_MAX_SHAPES, walk_shape, &w, 0);
	f->generation = meta->generation;
	if (w.found) {
		f->action = w.best.action;
		f->policy = w.best.policy;
		f->rule_id = w.best.rule_id;
	} else {
		f->action = meta->default_action;
		f->policy = meta->default_policy;
		f->rule_id = meta->default_rule_id;
	}
	if (f->action == CLV_ACT_STEER)
		f->policy += (__u16)(w.bank * CLV_MAX_POLICIES); /* absolute index */
}

/* Picks a link for the flow's policy. Returns 0 when one is usable. */
static __always_inline int pick_link_avoiding(struct pkt *p, struct clv_flow *f, __u64 avoid);

static __always_inline int pick_link(struct pkt *p, struct clv_flow *f)
{
	return pick_link_avoiding(p, f, 0);
}

/* As pick_link, never onto a link in `avoid` (the links a flow's policy
 * leaves); and with no usable member left, -1 without deciding the last
 * resort when `avoid` is set (the caller keeps the flow where it is). */
static __always_inline int pick_link_avoiding(struct pkt *p, struct clv_flow *f, __u64 avoid)
{
	struct clv_link_state *st;
	struct clv_policy *pol;
	struct clv_link *l;
	__u32 zero = 0, idx = f->policy, slot;
	int m;

	pol = bpf_map_lookup_elem(&clv_policies, &idx);
	st = bpf_map_lookup_elem(&clv_lstate, &zero);
	if (!pol || !st)
		return -1;
	m = clv_pick_member(pol, clv_usable_links(pol, st, p->t.family) & ~avoid,
	                    clv_flow_hash(&p->t, pol->sticky));
	if (avoid && (m < 0 || m >= CLV_POLICY_MAX_MEMBERS))
		return -1;
	if (m < 0 || m >= CLV_POLICY_MAX_MEMBERS) {
		f->action = pol->last_resort == CLV_LAST_DROP ? CLV_ACT_DROP : CLV_ACT_BYPASS;
		f->flags |= CLV_FLOW_LAST_RESORT;
		return -1;
	}
	slot = pol->members[m].link & (CLV_MAX_LINKS - 1);
	l = bpf_map_lookup_elem(&clv_links, &slot);
	if (!l)
		return -1;
	f->link = (__u8)slot;
	f->link_epoch = l->epoch;
	f->mode = l->mode;
	return 0;
}

/* Is this destination for the host itself, or one the host would not forward
 * (no route, forwarding off, or a blackhole, unreachable or prohibit route)?
 * Then never steer: the stack delivers it, drops it or answers with the ICMP
 * error the route calls for. The lookup is as the unmarked packet's: rules
 * for clovis's own marks do not apply, so an operator's blackhole in the main
 * table wins over steering. */
static __always_inline int host_bound(struct __sk_buff *skb, struct pkt *p)
{
	struct bpf_fib_lookup fib = {};
	long rc;

	fib.ifindex = skb->ifindex;
	fib.l4_protocol = p->t.proto;
	if (p->t.family == CLV_AF_INET) {
		fib.family = AF_INET;
		fib.ipv4_src = p->t.src[0];
		fib.ipv4_dst = p->t.dst[0];
	} else {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, p->t.src, 16);
		__builtin_memcpy(fib.ipv6_dst, p->t.dst, 16);
	}
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	return rc == BPF_FIB_LKUP_RET_NOT_FWDED || rc == BPF_FIB_LKUP_RET_FWD_DISABLED ||
	       rc == BPF_FIB_LKUP_RET_BLACKHOLE || rc == BPF_FIB_LKUP_RET_UNREACHABLE ||
	       rc == BPF_FIB_LKUP_RET_PROHIBIT;
}

#endif /* CLOVIS_BPF_CLASSIFY_H */
