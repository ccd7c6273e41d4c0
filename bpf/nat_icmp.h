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
	return csum_replace2(csum_replace2(check, (__u16)from, (__u16)to), (__u16)(from >> 16), (__u16)(to >> 16));
}

/* The packet an ICMP error quotes. */
struct quote {
	__be32 src[4], dst[4];
	__u32 csum;         /* offset of the ICMP checksum */
	__u32 l3, l4;       /* offsets of the quoted IP and L4 headers */
	__u16 sport, dport; /* host order; an echo request: sport is its identifier */
	__u8 proto;
	__u8 echo;
};

/* Reads the quote of an ICMP error; -1 if `p` is no error, or quotes no
 * TCP/UDP/SCTP/UDP-Lite header or echo request whole enough to tell its flow
 * (8 bytes). A quote behind IPv6 extension headers is not looked into. */
static __always_inline int read_quote(struct __sk_buff *skb, struct pkt *p, struct quote *q)
{
	__u16 w[4];
	__u8 type;

	if (bpf_skb_load_bytes(skb, p->l4, &type, 1) || !is_icmp_error(p, type))
		return -1;
	q->csum = p->l4 + 2;
	q->l3 = p->l4 + 8;
	if (p->t.family == CLV_AF_INET) {
		struct iphdr in;

		if (bpf_skb_load_bytes(skb, q->l3, &in, sizeof(in)) || in.version != 4 || in.ihl < 5)
			return -1;
		q->proto = in.protocol;
		q->src[0] = in.saddr;
		q->dst[0] = in.daddr;
		q->l4 = q->l3 + in.ihl * 4;
	} else {
		struct ipv6hdr in;

		if (bpf_skb_load_bytes(skb, q->l3, &in, sizeof(in)))
			return -1;
		q->proto = in.nexthdr;
		__builtin_memcpy(q->src, &in.saddr, 16);
		__builtin_memcpy(q->dst, &in.daddr, 16);
		q->l4 = q->l3 + sizeof(in);
	}
	if (bpf_skb_load_bytes(skb, q->l4, w, sizeof(w)))
		return -1;
	q->echo = (q->proto == IPPROTO_ICMP && ((__u8 *)w)[0] == 8) ||
		  (q->proto == IPPROTO_ICMPV6 && ((__u8 *)w)[0] == 128);
	if (q->echo) {
		q->sport = bpf_ntohs(w[2]);
		q->dport = 0;
	} else if (is_port_proto(q->proto)) {
		q->sport = bpf_ntohs(w[0]);
		q->dport = bpf_ntohs(w[1]);
	} else {
		return -1;
	}
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

/* Rewrites the quote's source (dst = 0) or destination address and port (an
 * echo request: its identifier, with the source), fixing the quoted IPv4
 * header's checksum and the ICMP checksum. The quoted TCP/UDP checksum is
 * left as it was: receivers match a quote by addresses and ports. */
static __always_inline int quote_rewrite(struct __sk_buff *skb, struct pkt *p, struct quote *q, int dst,
					 const __be32 *addr, __u16 port)
{
	const __be32 *old = dst ? q->dst : q->src;

	if (p->t.family == CLV_AF_INET) {
		__u32 check_off = q->l3 + offsetof(struct iphdr, check);
		__u16 check;

		if (bpf_skb_load_bytes(skb, check_off, &check, 2) ||
		    quote_store16(skb, q->csum, check_off, check, csum_replace4(check, old[0], addr[0])) ||
		    quote_store32(skb, q->csum, q->l3 + (dst ? offsetof(struct iphdr, daddr) : offsetof(struct iphdr, saddr)),
				  old[0], addr[0]))
			return -1;
	} else {
		__s64 diff = bpf_csum_diff((__be32 *)old, 16, (__be32 *)addr, 16, 0);

		if (bpf_l4_csum_replace(skb, q->csum, 0, diff, 0) ||
		    bpf_skb_store_bytes(skb, q->l3 + (dst ? offsetof(struct ipv6hdr, daddr) : offsetof(struct ipv6hdr, saddr)),
					addr, 16, 0))
			return -1;
	}
	if (q->echo)
		return dst ? 0 : quote_store16(skb, q->csum, q->l4 + 4, bpf_htons(q->sport), bpf_htons(port));
	return quote_store16(skb, q->csum, q->l4 + (dst ? 2 : 0), bpf_htons(dst ? q->dport : q->sport), bpf_htons(port));
}

/* WAN ingress: an ICMP error about a packet clovis translated. Routers and
 * the remote host address it to the NAT address and quote the packet as it
 * left (NAT address and port as source); the host would take it for its own
 * and drop it, and the client would never learn of an unreachable port, an
 * expired TTL (traceroute) or a smaller path MTU (PMTU discovery). The outer
 * destination and the quote's source go back to the client's, and the error
 * to the client. Returns a TC action. */
static __always_inline int nat_icmp_error_in(struct __sk_buff *skb, struct pkt *p)
{
	struct clv_nat_key nk = {};
	struct clv_flow_key *orig;
	struct quote q = {};
	struct clv_flow *f;

	if (read_quote(skb, p, &q))
		return TC_ACT_UNSPEC;
	__builtin_memcpy(nk.local, q.src, 16);
	__builtin_memcpy(nk.remote, q.dst, 16);
	nk.local_port = q.sport;
	nk.remote_port = q.dport;
	nk.proto = q.proto;
	nk.family = p->t.family;
	orig = bpf_map_lookup_elem(&clv_nat, &nk);
	if (!orig)
		return TC_ACT_UNSPEC;
	f = bpf_map_lookup_elem(&clv_flows, orig);
	if (!f || !(f->flags & CLV_FLOW_NAT) || f->mode != CLV_MODE_REDIRECT || f->action != CLV_ACT_STEER ||
	    f->nat_port != q.sport)
		return TC_ACT_UNSPEC;
	stat(CLV_STAT_RETURN);
	__sync_fetch_and_add(&f->pkts_in, p->wire_pkts);
	__sync_fetch_and_add(&f->bytes_in, skb->len);
	count_link(f->link, p->wire_pkts, skb->len, 0);
	if (dec_ttl(skb, p))
		return TC_ACT_UNSPEC;
	/* The outer destination (ICMPv6: with its pseudo-header checksum), then the quote. */
	if (rewrite(skb, p, 1, orig->src, 0) || quote_rewrite(skb, p, &q, 0, orig->src, orig->sport)) {
		stat(CLV_STAT_REDIRECT_ERR);
		return TC_ACT_SHOT;
	}
	return bpf_redirect_neigh(f->lan_ifindex, NULL, 0, 0);
}

/* LAN ingress: an ICMP error a client sends about a packet of a translated
 * flow (a port closed under a UDP exchange, a LAN hop's smaller MTU). It
 * quotes the packet as the client got it (its own address and port as
 * destination); the remote knows the flow by the NAT address and port. The
 * quote's destination becomes those, and the error leaves by the flow's link
 * with the flow's source translation. 0 when the packet is not such an error
 * (the caller goes on with it), else 1 with the TC action in *act. */
static __always_inline int nat_icmp_error_out(struct __sk_buff *skb, struct pkt *p, int *act)
{
	struct clv_flow_key k = {};
	struct quote q = {};
	struct clv_link *l;
	struct clv_flow *f;
	__u32 slot;

	if (read_quote(skb, p, &q) || q.echo)
		return 0;
	__builtin_memcpy(k.src, q.dst, 16);
	__builtin_memcpy(k.dst, q.src, 16);
	k.sport = q.dport;
	k.dport = q.sport;
	k.proto = q.proto;
	k.family = p->t.family;
	f = bpf_map_lookup_elem(&clv_flows, &k);
	if (!f || !(f->flags & CLV_FLOW_NAT) || f->mode != CLV_MODE_REDIRECT || f->action != CLV_ACT_STEER)
		return 0;
	slot = f->link & (CLV_MAX_LINKS - 1);
	l = bpf_map_lookup_elem(&clv_links, &slot);
	/* Nothing is written before steer() is sure to send it. */
	if (!l || !l->ifindex || l->mode != CLV_MODE_REDIRECT || p->ttl <= 1)
		return 0;
	__sync_fetch_and_add(&f->pkts_out, p->wire_pkts);
	__sync_fetch_and_add(&f->bytes_out, skb->len);
	if (quote_rewrite(skb, p, &q, 1, f->nat_addr, f->nat_port)) {
		stat(CLV_STAT_REDIRECT_ERR);
		*act = TC_ACT_SHOT;
		return 1;
	}
	*act = steer(skb, p, f);
	return 1;
}

#endif /* CLOVIS_BPF_NAT_ICMP_H */
