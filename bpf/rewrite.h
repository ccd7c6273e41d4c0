/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header rewrites for redirect mode, where the kernel's forwarding and NAT are
 * skipped: source/destination translation with incremental checksum fixes,
 * and the TTL / hop limit decrement. Private to clovis.bpf.c.
 */
#ifndef CLOVIS_BPF_REWRITE_H
#define CLOVIS_BPF_REWRITE_H

static __always_inline __u32 l4_csum_off(struct pkt *p)
{
	if (p->frag == FRAG_LATER)
		return 0; /* no L4 header; its checksum was fixed in the first fragment */
	switch (p->t.proto) {
	case IPPROTO_TCP:
		return p->l4 + offsetof(struct tcphdr, check);
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
		return p->l4 + offsetof(struct udphdr, check);
	case IPPROTO_ICMPV6:
		return p->l4 + 2;
	}
	return 0; /* ICMPv4 has no pseudo-header; SCTP uses CRC32c (not translated) */
}

/* Rewrites the source (LAN -> WAN) or destination (WAN -> LAN) address and
 * port, fixing the IP and L4 checksums. */
static __always_inline int rewrite(struct __sk_buff *skb, struct pkt *p, int dst, const __be32 *addr,
                                   __u16 port)
{
	__u32 csum = l4_csum_off(p);
	__u64 udp_flags = p->t.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if (p->t.family == CLV_AF_INET) {
		__u32 off = p->l3 + (dst ? offsetof(struct iphdr, daddr) : offsetof(struct iphdr, saddr));
		__be32 old = dst ? p->t.dst[0] : p->t.src[0];

		if (csum && bpf_l4_csum_replace(skb, csum, old, addr[0], BPF_F_PSEUDO_HDR | udp_flags | 4))
			return -1;
		if (bpf_l3_csum_replace(skb, p->l3 + offsetof(struct iphdr, check), old, addr[0], 4))
			return -1;
		if (bpf_skb_store_bytes(skb, off, addr, 4, 0))
			return -1;
	} else {
		__u32 off = p->l3 + (dst ? offsetof(struct ipv6hdr, daddr) : offsetof(struct ipv6hdr, saddr));
		__be32 *old = dst ? p->t.dst : p->t.src;
		__s64 diff = bpf_csum_diff(old, 16, (__be32 *)addr, 16, 0);

		if (csum && bpf_l4_csum_replace(skb, csum, 0, diff, BPF_F_PSEUDO_HDR | udp_flags))
			return -1;
		if (bpf_skb_store_bytes(skb, off, addr, 16, 0))
			return -1;
	}
	if (p->has_ports) {
		__u16 old_port = bpf_htons(dst ? p->t.dport : p->t.sport);
		__u16 new_port = bpf_htons(port);
		__u32 off = p->l4 + (dst ? 2 : 0);

		if (old_port != new_port) {
			if (csum && bpf_l4_csum_replace(skb, csum, old_port, new_port, udp_flags | 2))
				return -1;
			if (bpf_skb_store_bytes(skb, off, &new_port, 2, 0))
				return -1;
		}
	}
	return 0;
}

/* The u64 whose bytes in memory are `first`'s, then `second`'s. Helpers copy
 * what we pass them with 8-byte loads; a load that spans two smaller stores
 * still in the store buffer cannot be forwarded and waits for both to reach
 * the cache (behind every store the stack made before us, skb set-up
 * included). One 8-byte store avoids that stall. */
static __always_inline __u64 pack2x32(__u32 first, __u32 second)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (__u64)second << 32 | first;
#else
	return (__u64)first << 32 | second;
#endif
}

/* The kernel's csum16_add() and csum_replace2() (include/net/checksum.h), which
 * bpf_l3_csum_replace(..., 2) runs: same arithmetic, so the same bits. */
static __always_inline __u16 csum16_add(__u16 csum, __u16 addend)
{
	__u16 res = csum + addend;

	return res + (res < addend);
}

static __always_inline __u16 csum_replace2(__u16 check, __u16 old, __u16 new)
{
	return ~csum16_add(csum16_add(~check, ~old), new);
}

/* Forwarding duties the kernel would do: TTL / hop limit. Returns -1 when it
 * expires, so the kernel (not us) answers with ICMP time exceeded. */
static __always_inline int dec_ttl(struct __sk_buff *skb, struct pkt *p)
{
	if (p->ttl <= 1)
		return -1;
	if (p->t.family == CLV_AF_INET) {
		__u16 old = bpf_htons(((__u16)p->ttl << 8) | p->t.proto);
		__u16 new = bpf_htons(((__u16)(p->ttl - 1) << 8) | p->t.proto);
		void *data = (void *)(long)skb->data;
		void *end = (void *)(long)skb->data_end;
		struct iphdr *ip = data + sizeof(struct ethhdr);
		__u8 ttl = p->ttl - 1;

		if (p->l3 == sizeof(struct ethhdr) && (void *)(ip + 1) <= end) {
			/* TTL, protocol and checksum are bytes 8-11 of the header: one
			 * write (one helper call, one 4-byte store) instead of two. */
			__u16 check = csum_replace2(ip->check, old, new);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			__u32 w = ttl | (__u32)p->t.proto << 8 | (__u32)check << 16;
#else
			__u32 w = (__u32)ttl << 24 | (__u32)p->t.proto << 16 | check;
#endif

			bpf_skb_store_bytes(skb, p->l3 + offsetof(struct iphdr, ttl), &w, 4, 0);
			return 0;
		}
		bpf_l3_csum_replace(skb, p->l3 + offsetof(struct iphdr, check), old, new, 2);
		bpf_skb_store_bytes(skb, p->l3 + offsetof(struct iphdr, ttl), &ttl, 1, 0);
	} else {
		__u8 hl = p->ttl - 1;

		bpf_skb_store_bytes(skb, p->l3 + offsetof(struct ipv6hdr, hop_limit), &hl, 1, 0);
	}
	return 0;
}

#endif /* CLOVIS_BPF_REWRITE_H */
