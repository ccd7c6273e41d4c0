/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IP fragments. Only a datagram's first fragment carries its ports; the
 * kernel's conntrack reassembles before it looks (nf_defrag), a TC program
 * cannot. So clovis remembers, per datagram, the flow its first fragment
 * belonged to, keyed as the kernel keys reassembly (addresses and
 * identification; IPv4 also the protocol), and later fragments follow that
 * flow: its rule (drop included), its link, its NAT (the addresses; the ports
 * and L4 checksum are in the first fragment only). A later fragment whose
 * first one has not been seen cannot be told apart from one of a translated
 * flow and is dropped (frag_unknown), unless it is for the host itself, which
 * reassembles it. Both ways: clv_wan_in does the same for the replies of
 * translated flows. DESIGN.md, "Fragments". Private to clovis.bpf.c.
 */
#ifndef CLOVIS_BPF_FRAG_H
#define CLOVIS_BPF_FRAG_H

#define FRAG_LAN 0 /* from a client: src is the client */
#define FRAG_WAN 1 /* to a NAT address: dst is the NAT address */

/* Internal to the program (never read or written by user space). */
struct frag_key {
	__be32 src[4];
	__be32 dst[4];
	__u32 id;
	__u8 proto; /* IPv4 only: IPv6 reassembly does not key on it */
	__u8 family;
	__u8 dir; /* FRAG_LAN, FRAG_WAN */
	__u8 pad;
};

/* A datagram lives as long as its fragments are in flight (the kernel gives
 * up on one after ipfrag_time, 30 s): a small LRU is plenty. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct frag_key);
	__type(value, struct clv_flow_key);
	__uint(max_entries, 16384);
} clv_frags SEC(".maps");

static __always_inline void frag_key_of(struct pkt *p, __u8 dir, struct frag_key *k)
{
	__builtin_memcpy(k->src, p->t.src, 16);
	__builtin_memcpy(k->dst, p->t.dst, 16);
	k->id = p->frag_id;
	k->proto = p->t.family == CLV_AF_INET ? p->t.proto : 0;
	k->family = p->t.family;
	k->dir = dir;
	k->pad = 0;
}

/* A first fragment: its datagram's later fragments belong to flow `fk`. */
static __always_inline void frag_remember(struct pkt *p, __u8 dir, const struct clv_flow_key *fk)
{
	struct frag_key k;

	frag_key_of(p, dir, &k);
	bpf_map_update_elem(&clv_frags, &k, fk, BPF_ANY);
}

/* The flow of a later fragment's datagram, looked up in `f`'s key. */
static __always_inline struct clv_flow *frag_flow(struct pkt *p, __u8 dir, struct clv_flow_key *fk)
{
	struct clv_flow_key *v;
	struct frag_key k;
	int in_new;

	frag_key_of(p, dir, &k);
	v = bpf_map_lookup_elem(&clv_frags, &k);
	if (!v)
		return NULL;
	*fk = *v; /* an LRU entry: another datagram may take it under us */
	return find_flow(fk, &in_new);
}

#define FRAG_TOO_BIG (-101) /* not a TC action: the caller answers with answer_too_big() */

/* LAN ingress, a later fragment: as its datagram's flow says. FRAG_TOO_BIG
 * (and the link's MTU in *mtu) when it is too big for a redirect link: the
 * caller answers, so that the three frames never add up on the stack. */
static __always_inline int lan_fragment(struct __sk_buff *skb, struct pkt *p, __u32 *mtu)
{
	__u32 slot;
	struct clv_flow_key fk;
	struct clv_link *l;
	struct clv_flow *f;

	stat(CLV_STAT_FRAGMENT);
	f = frag_flow(p, FRAG_LAN, &fk);
	if (!f) {
		if (host_bound(skb, p))
			return TC_ACT_UNSPEC; /* the host reassembles what is its own */
		stat(CLV_STAT_FRAG_UNKNOWN);
		return TC_ACT_SHOT;
	}
	f->last_ns = bpf_ktime_get_coarse_ns();
	__sync_fetch_and_add(&f->pkts_out, p->wire_pkts);
	__sync_fetch_and_add(&f->bytes_out, skb->len);
	if (f->flags & CLV_FLOW_LOCAL)
		return TC_ACT_UNSPEC;
	switch (f->action) {
	case CLV_ACT_STEER:
		/* The link the first fragment left by, or none: a flow whose
		 * link changed under its datagram is classified again by its
		 * next whole packet; this fragment cannot be translated. */
		slot = f->link & (CLV_MAX_LINKS - 1);
		l = bpf_map_lookup_elem(&clv_links, &slot);
		if (!l || l->epoch != f->link_epoch) {
			stat(CLV_STAT_FRAG_UNKNOWN);
			return TC_ACT_SHOT;
		}
		if (l->mode == CLV_MODE_REDIRECT && p->ttl > 1) {
			*mtu = exceeds_mtu(skb, p, slot, l->ifindex, f->last_ns);
			if (*mtu) {
				link_drop(slot, CLV_LINK_DROP_TOO_BIG);
				return FRAG_TOO_BIG;
			}
		}
		return steer(skb, p, f, 0);
	case CLV_ACT_DROP:
		stat(f->flags & CLV_FLOW_LAST_RESORT ? CLV_STAT_DROP_NO_LINK : CLV_STAT_DROP_RULE);
		return TC_ACT_SHOT;
	}
	return TC_ACT_UNSPEC;
}

/* WAN ingress, a later fragment of a reply to a redirect-mode flow: as the
 * first fragment went. Anything else is the host's, as before. */
static __noinline int wan_fragment(struct __sk_buff *skb, struct pkt *p)
{
	struct clv_flow_key fk;
	struct clv_flow *f;

	f = frag_flow(p, FRAG_WAN, &fk);
	if (!f || f->mode != CLV_MODE_REDIRECT || f->action != CLV_ACT_STEER)
		return TC_ACT_UNSPEC;
	stat(CLV_STAT_RETURN);
	__sync_fetch_and_add(&f->pkts_in, p->wire_pkts);
	__sync_fetch_and_add(&f->bytes_in, skb->len);
	f->last_ns = bpf_ktime_get_coarse_ns();
	count_link(f->link, p->wire_pkts, skb->len, 0);
	if (dec_ttl(skb, p))
		return TC_ACT_UNSPEC;
	if ((f->flags & CLV_FLOW_NAT) && rewrite(skb, p, 1, fk.src, 0)) {
		stat(CLV_STAT_REDIRECT_ERR);
		link_drop(f->link, CLV_LINK_DROP_REDIRECT_ERR);
		return TC_ACT_SHOT;
	}
	return bpf_redirect_neigh(f->lan_ifindex, NULL, 0, 0);
}

#endif /* CLOVIS_BPF_FRAG_H */
