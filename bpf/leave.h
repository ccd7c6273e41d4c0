/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Live flows leaving a link that is up: the link's CLV_LINK_LEAVE bit (a
 * summary the agent keeps in clv_links) says some policy's flows must leave
 * it; the flow's policy's clv_leave entry says whether this one must
 * (docs/DESIGN.md, "Moving live flows"). Private to clovis.bpf.c: uses its
 * maps and helpers.
 */
#ifndef CLOVIS_BPF_LEAVE_H
#define CLOVIS_BPF_LEAVE_H

static __always_inline int translates(const struct clv_link *l)
{
	return l->snat != CLV_SNAT_NONE || (l->flags & CLV_LINK_MASQ);
}

/* A pinned flow on an up link its policy leaves (clv_leave; the link's
 * CLV_LINK_LEAVE bit said some policy does). Returns as revalidate. Only the
 * flows of this slot's link pay for it, and only while the bit is set. Not
 * inlined: its frame would add to lan_flow's, whose chain down to setup_nat
 * the verifier bounds at 512 bytes of stack. */
static __noinline int leave_link(struct pkt *p, struct clv_flow *f, struct clv_link *l, __u32 slot)
{
	__u32 pidx = f->policy % CLV_MAX_POLICIES, reason, to, idx;
	__u64 bit = 1ull << slot, all;
	int translated = (f->flags & CLV_FLOW_NAT) || translates(l);
	struct clv_leave *lv;
	struct clv_link *nl;
	__u32 was_epoch = f->link_epoch;
	__u8 was_link = f->link, was_mode = f->mode;

	if (f->action != CLV_ACT_STEER || (translated && !(l->flags & CLV_LINK_LEAVE_FORCE)))
		return 0;
	lv = bpf_map_lookup_elem(&clv_leave, &pidx);
	/* An entry is of the rule set that wrote it: a flow of another mapping
	 * has another policy at this index (it follows on-link-down only). */
	if (!lv || lv->generation != f->generation)
		return 0;
	all = lv->links[0] | lv->links[1] | lv->links[2] | lv->links[3];
	if (!(all & bit) || (translated && !(lv->force & bit)))
		return 0;
	reason = (lv->links[CLV_MOVE_SLA] & bit)      ? CLV_MOVE_SLA
	         : (lv->links[CLV_MOVE_RETURN] & bit) ? CLV_MOVE_RETURN
	         : (lv->links[CLV_MOVE_BUDGET] & bit) ? CLV_MOVE_BUDGET
	                                              : 3;
	if (pick_link_avoiding(p, f, all) != 0)
		return 0; /* nowhere else to go: stay (not the last resort); f unchanged */
	to = f->link & (CLV_MAX_LINKS - 1);
	nl = bpf_map_lookup_elem(&clv_links, &to);
	if (!nl || (!translated && translates(nl) && !(lv->force & bit))) {
		/* Onto a translating link: a new source address, not forced. */
		f->link = was_link;
		f->link_epoch = was_epoch;
		f->mode = was_mode;
		return 0;
	}
	idx = reason * CLV_MIGRATION_ENTRIES + slot * CLV_MAX_LINKS + to;
	{
		__u64 *v = bpf_map_lookup_elem(&clv_moves, &idx);

		if (v)
			*v += 1;
	}
	if (translated || translates(nl)) {
		stat(CLV_STAT_LEFT_NAT);
		return 1; /* a new source address: the flow restarts, classified afresh */
	}
	f->flags |= CLV_FLOW_MIGRATED;
	stat(CLV_STAT_LEFT);
	link_event(f->link, 1);
	return 0;
}

#endif /* CLOVIS_BPF_LEAVE_H */
