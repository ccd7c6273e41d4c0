/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMP errors under clovis's NAT (redirect mode): an error about a packet
 * clovis translated carries, quoted, the packet as the far side saw it. Both
 * ways the error is made to fit the side it goes to, as the kernel's NAT does
 * for conntrack's RELATED errors (RFC 5508): from the WAN, to the client, about
 * its own packet; from the client, by the flow's link, about the translated
 * one. Private to clovis.bpf.c: included after the maps and steer().
 */
#ifndef CLOVIS_BPF_NAT_ICMP_H
#define CLOVIS_BPF_NAT_ICMP_H

/* Destination unreachable (v6: also packet too big), time exceeded,
 * parameter problem: the errors that quote the packet they are about. */
static __always_inline int is_icmp_error(struct pkt *p, __u8 type)
{
	if (p->t.family == CLV_AF_INET)
		return p->t.proto == IPPROTO_ICMP && (type == 3 || type == 11 || type == 12);
	return p->t.proto == IPPROTO_ICMPV6 && type >= 1 && type <= 4;
}

static __always_inline __u16 csum_replace4(__u16 check, __be32 from, __be32 to)
{
	return csum_replace2(csum_replace2(check, (__u16)from, (__u16)to), (__u16)(from >> 16),
	                     (__u16)(to >> 16));
}

/* The packet an ICMP error quotes: its tuple in flow-key form, as it went
 * (src: its sender), and where its L4 header is. An echo request: sport is its
 * identifier, dport 0. The quoted IP header is at p->l4 + 8 and the ICMP
 * checksum at p->l4 + 2. Kept small: nat_icmp_error_out's stack adds to
 * clv_lan_in's, and both must fit in 512 bytes. */
struct quote {
	struct clv_flow_key t;
	__u32 l4;
	__u8 echo;
};

/* Reads the quote of an ICMP error; -1 if `p` is no error, or quotes no
 * TCP/UDP/SCTP/UDP-Lite header or echo request whole enough to tell its flow
 * (8 bytes). A quote behind IPv6 extension headers is not looked into. */
static __always_inline int read_quote(struct __sk_buff *skb, struct pkt *p, struct quote *q)
{
	__u32 l3 = p->l4 + 8;
	__u8 b;

	if (bpf_skb_load_bytes(skb, p->l4, &b, 1) || !is_icmp_error(p, b))
		return -1;
	q->t.family = p->t.family;
	if (p->t.family == CLV_AF_INET) {
		if (bpf_skb_load_bytes(skb, l3, &b, 1) || (b >> 4) != 4 || (b & 0xf) < 5 ||
		    bpf_skb_load_bytes(skb, l3 + offsetof(struct iphdr, protocol), &q->t.proto, 1) ||
		    bpf_skb_load_bytes(skb, l3 + offsetof(struct iphdr, saddr), &q->t.src[0], 4) ||
		    bpf_skb_load_bytes(skb, l3 + offsetof(struct iphdr, daddr), &q->t.dst[0], 4))
			return -1;
		q->l4 = l3 + (b & 0xf) * 4;
	} else {
		/* src and dst are adjacent, in the key as in the header */
		if (bpf_skb_load_bytes(skb, l3 + offsetof(struct ipv6hdr, nexthdr), &q->t.proto, 1) ||
		    bpf_skb_load_bytes(skb, l3 + offsetof(struct ipv6hdr, saddr), q->t.src, 32))
			return -1;
		q->l4 = l3 + sizeof(struct ipv6hdr);
	}
	if (q->t.proto == IPPROTO_ICMP || q->t.proto == IPPROTO_ICMPV6) {
		/* An echo request: identifier and sequence number at 4. */
		if (bpf_skb_load_bytes(skb, q->l4, &b, 1) || b != (q->t.proto == IPPROTO_ICMP ? 8 : 128) ||
		    bpf_skb_load_bytes(skb, q->l4 + 4, &q->t.sport, 4))
			return -1;
		q->echo = 1;
		q->t.sport = bpf_ntohs(q->t.sport);
		q->t.dport = 0;
		return 0;
	}
	/* The ports (adjacent, in the key as in the header), once the 8 bytes
	 * every error quotes at least are known to be there. */
	if (!is_port_proto(q->t.proto) || bpf_skb_load_bytes(skb, q->l4 + 4, &q->t.sport, 4) ||
	    bpf_skb_load_bytes(skb, q->l4, &q->t.sport, 4))
		return -1;
	q->t.sport = bpf_ntohs(q->t.sport);
	q->t.dport = bpf_ntohs(q->t.dport);
	return 0;
}

/* Writes 2 or 4 bytes of the quote at `off`, fixing the ICMP checksum at
 * `csum` (the quote is ICMP payload: no pseudo-header part). */
static __always_inline int quote_store16(struct __sk_buff *skb, __u32 csum, __u32 off, __u16 from, __u16 to)
{
	if (from == to)
		return 0;
	if (bpf_l4_csum_replace(skb, csum, from, to, 2))
		return -1;
	return bpf_skb_store_bytes(skb, off, &to, 2, 0);
}

static __always_inline int quote_store32(struct __sk_buff *skb, __u32 csum, __u32 off, __be32 from, __be32 to)
{
	if (from == to)
		return 0;
	if (bpf_l4_csum_replace(skb, csum, from, to, 4))
		return -1;
	return bpf_skb_store_bytes(skb, off, &to, 4, 0);
}

/* Rewrites the quote's source (dst = 0) or destination address `old` and
 * port `old_port` (an echo request: its identifier, with the source) to
 * `addr` and `port`, fixing the quoted IPv4 header's checksum and the ICMP
 * checksum. The quoted TCP/UDP checksum is left as it was: receivers match a
 * quote by addresses and ports. */
static __always_inline int quote_rewrite(struct __sk_buff *skb, struct pkt *p, struct quote *q, int dst,
                                         const __be32 *old, __u16 old_port, const __be32 *addr, __u16 port)
{
	__u32 csum = p->l4 + 2, l3 = p->l4 + 8;

	if (p->t.family == CLV_AF_INET) {
		__u32 check_off = l3 + offsetof(struct iphdr, check);
		__u16 check;

		if (bpf_skb_load_bytes(skb, check_off, &check, 2) ||
		    quote_store16(skb, csum, check_off, check, csum_replace4(check, old[0], addr[0])) ||
		    quote_store32(skb, csum,
		                  l3 + (dst ? offsetof(struct iphdr, daddr) : offsetof(struct iphdr, saddr)),
		                  old[0], addr[0]))
			return -1;
	} else {
		__s64 diff = bpf_csum_diff((__be32 *)old, 16, (__be32 *)addr, 16, 0);

		if (bpf_l4_csum_replace(skb, csum, 0, diff, 0) ||
		    bpf_skb_store_bytes(
		            skb,
		            l3 + (dst ? offsetof(struct ipv6hdr, daddr) : offsetof(struct ipv6hdr, saddr)),
		            addr, 16, 0))
			return -1;
	}
	if (q->echo)
		return dst ? 0 : quote_store16(skb, csum, q->l4 + 4, bpf_htons(old_port), bpf_htons(port));
	return quote_store16(skb, csum, q->l4 + (dst ? 2 : 0), bpf_htons(old_port), bpf_htons(port));
}

#define NOT_AN_ERROR_OF_OURS (-100) /* not a TC action */

static __always_inline int same_addr(const __be32 *a, const __be32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/* WAN ingress: an ICMP error about a packet clovis translated. Routers and
 * the remote host address it to the NAT address and quote the packet as it
 * left (NAT address and port as source); the host would take it for its own
 * and drop it, and the client would never learn of an unreachable port, an
 * expired TTL (traceroute) or a smaller path MTU (PMTU discovery). The outer
 * destination and the quote's source go back to the client's, and the error
 * to the client. NOT_AN_ERROR_OF_OURS when the packet is not such an error
 * (the caller goes on with it), else a TC action. */
static __always_inline int nat_icmp_error_in(struct __sk_buff *skb, struct pkt *p)
{
	struct clv_nat_key nk = {};
	struct clv_flow_key *owner, orig;
	struct quote q = {};
	struct clv_flow *f;
	int in_new;

	/* About a packet that left from the address it is sent to, as conntrack
	 * requires too: nothing else reaches a client this way. */
	if (read_quote(skb, p, &q) || !same_addr(p->t.dst, q.t.src))
		return NOT_AN_ERROR_OF_OURS;
	__builtin_memcpy(nk.local, q.t.src, 16);
	__builtin_memcpy(nk.remote, q.t.dst, 16);
	nk.local_port = q.t.sport;
	nk.remote_port = q.t.dport;
	nk.proto = q.t.proto;
	nk.family = q.t.family;
	owner = find_nat(&nk);
	if (!owner)
		return NOT_AN_ERROR_OF_OURS;
	orig = *owner; /* an LRU entry: another flow may claim it under us */
	f = find_flow(&orig, &in_new);
	if (!f || !(f->flags & CLV_FLOW_NAT) || f->mode != CLV_MODE_REDIRECT || f->action != CLV_ACT_STEER ||
	    f->nat_port != q.t.sport)
		return NOT_AN_ERROR_OF_OURS;
	stat(CLV_STAT_ICMP_ERR_IN);
	__sync_fetch_and_add(&f->pkts_in, p->wire_pkts);
	__sync_fetch_and_add(&f->bytes_in, skb->len);
	count_link(f->link, p->wire_pkts, skb->len, 0);
	if (dec_ttl(skb, p))
		return TC_ACT_UNSPEC;
	/* The outer destination (ICMPv6: with its pseudo-header checksum), then the quote. */
	if (rewrite(skb, p, 1, orig.src, 0) ||
	    quote_rewrite(skb, p, &q, 0, q.t.src, q.t.sport, orig.src, orig.sport)) {
		stat(CLV_STAT_REDIRECT_ERR);
		link_drop(f->link, CLV_LINK_DROP_REDIRECT_ERR);
		return TC_ACT_SHOT;
	}
	return bpf_redirect_neigh(f->lan_ifindex, NULL, 0, 0);
}

/* LAN ingress: an ICMP error a client sends about a packet of a translated
 * flow (a port closed under a UDP exchange, a LAN hop's smaller MTU). It
 * quotes the packet as the client got it (its own address and port as
 * destination); the remote knows the flow by the NAT address and port. The
 * quote's destination becomes those, and the error leaves by the flow's link
 * with the flow's source translation. NOT_AN_ERROR_OF_OURS when the packet
 * is not such an error (the caller goes on with it), else a TC action. A BPF
 * subprogram, not inlined: inlined, it cost clv_lan_in's TCP/UDP path ~2 ns a
 * packet (measured with udp_pps_edge); its stack adds to the caller's. */
static __noinline int nat_icmp_error_out(struct __sk_buff *skb, struct pkt *p)
{
	struct quote q = {};
	struct clv_link *l;
	struct clv_flow *f;
	__u32 slot;
	int i, r, in_new;

	/* From the client, to the remote, about what the remote sent the client. */
	if (read_quote(skb, p, &q) || q.echo || !same_addr(p->t.src, q.t.dst) ||
	    !same_addr(p->t.dst, q.t.src))
		return NOT_AN_ERROR_OF_OURS;
		/* The quote's tuple turned around is the client's flow key. */
#pragma unroll
	for (i = 0; i < 4; i++) {
		__be32 a = q.t.src[i];

		q.t.src[i] = q.t.dst[i];
		q.t.dst[i] = a;
	}
	r = q.t.sport;
	q.t.sport = q.t.dport;
	q.t.dport = r;
	f = find_flow(&q.t, &in_new);
	if (!f || !(f->flags & CLV_FLOW_NAT) || f->mode != CLV_MODE_REDIRECT || f->action != CLV_ACT_STEER ||
	    f->lan_ifindex != skb->ifindex || p->ttl <= 1)
		return NOT_AN_ERROR_OF_OURS;
	slot = f->link & (CLV_MAX_LINKS - 1);
	l = bpf_map_lookup_elem(&clv_links, &slot);
	/* The flow's link is gone or changed: its next packet reclassifies it;
	 * the error cannot be translated, and never leaves untranslated. */
	if (!l || !l->ifindex || l->mode != CLV_MODE_REDIRECT || l->epoch != f->link_epoch)
		return TC_ACT_SHOT;
	stat(CLV_STAT_ICMP_ERR_OUT);
	__sync_fetch_and_add(&f->pkts_out, p->wire_pkts);
	__sync_fetch_and_add(&f->bytes_out, skb->len);
	if (quote_rewrite(skb, p, &q, 1, q.t.src, q.t.sport, f->nat_addr, f->nat_port)) {
		stat(CLV_STAT_REDIRECT_ERR);
		link_drop(slot, CLV_LINK_DROP_REDIRECT_ERR);
		return TC_ACT_SHOT;
	}
	r = steer(skb, p, f, 0);
	/* An apply between the check above and steer(): half translated, dropped. */
	return r == TC_ACT_UNSPEC ? TC_ACT_SHOT : r;
}

#endif /* CLOVIS_BPF_NAT_ICMP_H */
