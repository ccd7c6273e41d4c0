/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing for the clovis TC programs: Ethernet, IPv4 (any IHL),
 * IPv6 with extension headers, ports or ICMP echo identifiers. A first
 * fragment (offset 0) is parsed as any packet and marked; a later one is
 * reported with its IP header's fields and the datagram's identification,
 * which is all it has (see frag.h). Private to clovis.bpf.c (static inline,
 * included once).
 */
#ifndef CLOVIS_BPF_PARSE_H
#define CLOVIS_BPF_PARSE_H

/* What parsing learned about a packet. */
struct pkt {
	struct clv_tuple t;     /* for classification (ICMP: ports 0) */
	struct clv_flow_key fk; /* flow identity (ICMP echo: sport = id) */
	__u32 l3;               /* offset of the IP header */
	__u32 l4;               /* offset of the L4 header */
	__u32 wire_pkts;        /* GSO segments, at least 1 */
	__u32 frag_id;          /* fragments: the datagram's identification */
	__u8 ttl;
	__u8 has_ports; /* TCP/UDP/SCTP/UDPLITE */
	__u8 icmp_echo;
	__u8 frag;      /* FRAG_* */
	__u8 tcp_flags; /* TCP: header byte 13 (CLV_TCP_*); 0 otherwise */
};

#define FRAG_NONE 0
#define FRAG_FIRST 1 /* offset 0, more to come: parsed to L4 */
#define FRAG_LATER 2 /* offset > 0: no L4 header */

/* PARSE_FRAGMENT: a later fragment (L3 fields and frag_id filled in).
 * PARSE_MALFORMED: truncated or invalid headers. PARSE_TOO_DEEP: IPv6 with
 * more extension headers than are walked: its L4 header is not known. */
enum parse_result { PARSE_OK, PARSE_NOT_IP, PARSE_FRAGMENT, PARSE_MALFORMED, PARSE_TOO_DEEP };

static __always_inline int is_port_proto(__u8 p)
{
	return p == IPPROTO_TCP || p == IPPROTO_UDP || p == IPPROTO_SCTP || p == IPPROTO_UDPLITE;
}

static __always_inline void set_ports(struct pkt *p, __u16 sport_be, __u16 dport_be)
{
	p->t.sport = bpf_ntohs(sport_be);
	p->t.dport = bpf_ntohs(dport_be);
	p->fk.sport = p->t.sport;
	p->fk.dport = p->t.dport;
	p->has_ports = 1;
}

static __always_inline int parse_l4(struct __sk_buff *skb, struct pkt *p)
{
	__u8 proto = p->t.proto;

	if (is_port_proto(proto)) {
		__u16 ports[2];

		if (bpf_skb_load_bytes(skb, p->l4, ports, sizeof(ports)))
			return PARSE_MALFORMED;
		set_ports(p, ports[0], ports[1]);
		/* Flags for connection tracking; a header cut before them
		 * (or a first fragment that short) is tracked as flagless. */
		if (proto == IPPROTO_TCP && bpf_skb_load_bytes(skb, p->l4 + 13, &p->tcp_flags, 1))
			p->tcp_flags = 0;
	} else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		__u8 hdr[6];

		if (bpf_skb_load_bytes(skb, p->l4, hdr, sizeof(hdr)))
			return PARSE_MALFORMED;
		/* echo request/reply: the identifier tells pings apart */
		if ((proto == IPPROTO_ICMP && (hdr[0] == 8 || hdr[0] == 0)) ||
		    (proto == IPPROTO_ICMPV6 && (hdr[0] == 128 || hdr[0] == 129))) {
			p->fk.sport = ((__u16)hdr[4] << 8) | hdr[5];
			p->icmp_echo = 1;
		}
	}
	return PARSE_OK;
}

#define IPV6_EXT_WALKED 6 /* extension headers walked; a longer chain is PARSE_TOO_DEEP */

static __always_inline int is_ipv6_ext(__u8 nexthdr)
{
	return nexthdr == 0 || nexthdr == 43 || nexthdr == 60 || nexthdr == 51 || nexthdr == 44;
}

/* The IPv6 fragment header at p->l4: a first fragment goes on to the next
 * header, a later one is reported. */
static __always_inline int parse_ipv6_frag(struct __sk_buff *skb, struct pkt *p, __u8 *nexthdr)
{
	struct {
		__u8 nexthdr;
		__u8 reserved;
		__be16 off_flags;
		__be32 id;
	} fh;

	if (bpf_skb_load_bytes(skb, p->l4, &fh, sizeof(fh)))
		return PARSE_MALFORMED;
	*nexthdr = fh.nexthdr;
	p->l4 += sizeof(fh);
	if (fh.off_flags & bpf_htons(0xfff9)) { /* offset or M: a real fragment */
		p->frag = fh.off_flags & bpf_htons(0xfff8) ? FRAG_LATER : FRAG_FIRST;
		p->frag_id = fh.id;
	}
	return p->frag == FRAG_LATER ? PARSE_FRAGMENT : PARSE_OK;
}

static __always_inline int parse_ipv6_ext(struct __sk_buff *skb, struct pkt *p, __u8 nexthdr)
{
	int i, r = PARSE_OK;

#pragma unroll
	for (i = 0; i < IPV6_EXT_WALKED; i++) {
		__u8 ext[2];

		if (!is_ipv6_ext(nexthdr))
			break;
		if (nexthdr == 44) {
			r = parse_ipv6_frag(skb, p, &nexthdr);
			if (r != PARSE_OK)
				break;
			continue;
		}
		if (bpf_skb_load_bytes(skb, p->l4, ext, sizeof(ext)))
			return PARSE_MALFORMED;
		p->l4 += nexthdr == 51 ? ((__u32)ext[1] + 2) * 4 : ((__u32)ext[1] + 1) * 8;
		nexthdr = ext[0];
	}
	if (r == PARSE_OK && is_ipv6_ext(nexthdr))
		return PARSE_TOO_DEEP;
	p->t.proto = nexthdr;
	p->fk.proto = nexthdr;
	return r;
}

static __always_inline void finish_l3(struct __sk_buff *skb, struct pkt *p)
{
	p->fk.family = p->t.family;
	p->fk.proto = p->t.proto;
	__builtin_memcpy(p->fk.src, p->t.src, 16);
	__builtin_memcpy(p->fk.dst, p->t.dst, 16);
	p->t.mark = skb->mark;
}

/* The common case read in place: TCP or UDP right after a plain IPv4 or IPv6
 * header, all in the linear part of the skb. Anything else (options,
 * extension headers, fragments, ICMP, non-linear headers) returns -1 and takes
 * the careful path below. Saves the helper calls on every packet. */
static __always_inline int parse_fast(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u16 *ports = (void *)(ip + 1);

		if ((void *)(ports + 2) > end || ip->ihl != 5 || ip->version != 4 ||
		    (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) ||
		    (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP))
			return -1;
		p->t.family = CLV_AF_INET;
		p->t.src[0] = ip->saddr;
		p->t.dst[0] = ip->daddr;
		p->fk.src[0] = ip->saddr;
		p->fk.dst[0] = ip->daddr;
		p->t.proto = ip->protocol;
		p->t.dscp = ip->tos >> 2;
		p->ttl = ip->ttl;
		p->l4 = sizeof(*eth) + sizeof(*ip);
		set_ports(p, ports[0], ports[1]);
		if (ip->protocol == IPPROTO_TCP) {
			__u8 *fl = (__u8 *)ports + 13;

			if ((void *)(fl + 1) > end)
				return -1;
			p->tcp_flags = *fl;
		}
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		__u16 *ports = (void *)(ip6 + 1);

		if ((void *)(ports + 2) > end || (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP))
			return -1;
		p->t.family = CLV_AF_INET6;
		__builtin_memcpy(p->t.src, &ip6->saddr, 16);
		__builtin_memcpy(p->t.dst, &ip6->daddr, 16);
		__builtin_memcpy(p->fk.src, &ip6->saddr, 16);
		__builtin_memcpy(p->fk.dst, &ip6->daddr, 16);
		p->t.proto = ip6->nexthdr;
		p->t.dscp = ((ip6->priority << 4) | (ip6->flow_lbl[0] >> 4)) >> 2;
		p->ttl = ip6->hop_limit;
		p->l4 = sizeof(*eth) + sizeof(*ip6);
		set_ports(p, ports[0], ports[1]);
		if (ip6->nexthdr == IPPROTO_TCP) {
			__u8 *fl = (__u8 *)ports + 13;

			if ((void *)(fl + 1) > end)
				return -1;
			p->tcp_flags = *fl;
		}
	} else {
		return -1;
	}
	p->l3 = sizeof(*eth);
	p->wire_pkts = skb->gso_segs ? skb->gso_segs : 1;
	p->fk.family = p->t.family;
	p->fk.proto = p->t.proto;
	p->t.mark = skb->mark;
	return PARSE_OK;
}

static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	__u16 h_proto;

	if (parse_fast(skb, p) == PARSE_OK)
		return PARSE_OK;

	if (bpf_skb_load_bytes(skb, offsetof(struct ethhdr, h_proto), &h_proto, sizeof(h_proto)))
		return PARSE_NOT_IP;
	p->l3 = sizeof(struct ethhdr);
	p->wire_pkts = skb->gso_segs ? skb->gso_segs : 1;
	if (h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, p->l3, &ip, sizeof(ip)))
			return PARSE_MALFORMED;
		if (ip.ihl < 5 || ip.version != 4)
			return PARSE_MALFORMED;
		if (ip.frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
			p->frag = ip.frag_off & bpf_htons(IP_OFFSET) ? FRAG_LATER : FRAG_FIRST;
			p->frag_id = ip.id;
		}
		p->t.family = CLV_AF_INET;
		p->t.src[0] = ip.saddr;
		p->t.dst[0] = ip.daddr;
		p->t.proto = ip.protocol;
		p->t.dscp = ip.tos >> 2;
		p->ttl = ip.ttl;
		p->l4 = p->l3 + ip.ihl * 4;
		if (p->frag == FRAG_LATER) {
			finish_l3(skb, p);
			return PARSE_FRAGMENT;
		}
	} else if (h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		int r;

		if (bpf_skb_load_bytes(skb, p->l3, &ip6, sizeof(ip6)))
			return PARSE_MALFORMED;
		p->t.family = CLV_AF_INET6;
		__builtin_memcpy(p->t.src, &ip6.saddr, 16);
		__builtin_memcpy(p->t.dst, &ip6.daddr, 16);
		p->t.dscp = ((ip6.priority << 4) | (ip6.flow_lbl[0] >> 4)) >> 2;
		p->ttl = ip6.hop_limit;
		p->l4 = p->l3 + sizeof(ip6);
		r = parse_ipv6_ext(skb, p, ip6.nexthdr);
		if (r == PARSE_FRAGMENT)
			finish_l3(skb, p);
		if (r != PARSE_OK)
			return r;
	} else {
		return PARSE_NOT_IP;
	}
	finish_l3(skb, p);
	return parse_l4(skb, p);
}

#endif /* CLOVIS_BPF_PARSE_H */
