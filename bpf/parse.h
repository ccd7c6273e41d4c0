/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing for the clovis TC programs: Ethernet, IPv4 (any IHL),
 * IPv6 with extension headers, ports or ICMP echo identifiers. Fragments are
 * reported, never parsed past: they are passed whole, never split across links.
 * Private to clovis.bpf.c (static inline, included once).
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
	__u8 ttl;
	__u8 has_ports;         /* TCP/UDP/SCTP/UDPLITE */
	__u8 icmp_echo;
};

enum parse_result { PARSE_OK, PARSE_NOT_IP, PARSE_FRAGMENT, PARSE_MALFORMED };

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

static __always_inline int parse_ipv6_ext(struct __sk_buff *skb, struct pkt *p, __u8 nexthdr)
{
	int i;

#pragma unroll
	for (i = 0; i < 6; i++) {
		__u8 ext[2];

		if (nexthdr == 44 /* fragment */)
			return PARSE_FRAGMENT;
		if (nexthdr != 0 && nexthdr != 43 && nexthdr != 60 && nexthdr != 51)
			break;
		if (bpf_skb_load_bytes(skb, p->l4, ext, sizeof(ext)))
			return PARSE_MALFORMED;
		p->l4 += nexthdr == 51 ? ((__u32)ext[1] + 2) * 4 : ((__u32)ext[1] + 1) * 8;
		nexthdr = ext[0];
	}
	p->t.proto = nexthdr;
	p->fk.proto = nexthdr;
	return PARSE_OK;
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
		if (ip.frag_off & bpf_htons(IP_MF | IP_OFFSET))
			return PARSE_FRAGMENT;
		p->t.family = CLV_AF_INET;
		p->t.src[0] = ip.saddr;
		p->t.dst[0] = ip.daddr;
		p->t.proto = ip.protocol;
		p->t.dscp = ip.tos >> 2;
		p->ttl = ip.ttl;
		p->l4 = p->l3 + ip.ihl * 4;
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
		if (r != PARSE_OK)
			return r;
	} else {
		return PARSE_NOT_IP;
	}
	finish_l3(skb, p);
	return parse_l4(skb, p);
}

#endif /* CLOVIS_BPF_PARSE_H */
