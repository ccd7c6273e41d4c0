/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The forwarding path's MTU check, for redirect mode. bpf_redirect_neigh()
 * hands the packet straight to the link's transmit, past ip_forward()'s MTU
 * check: a packet too big for the link would be dropped by the driver (or
 * the veth peer) with no word to the sender, and PMTU discovery, TCP's
 * included, would black-hole. As ip_forward() and ip6_forward() do, such a
 * packet is answered here with ICMP "fragmentation needed" (IPv4) or ICMPv6
 * "packet too big", carrying the link's MTU, and dropped. The answer is
 * built in place from the packet itself: trimmed to the quote, headers put
 * in front, and redirected back out of the LAN interface it came in on.
 *
 * IPv4 without DF: the kernel would fragment. A TC program cannot make two
 * packets of one, and the stack cannot do it for us (it would route the
 * packet by the main table, untranslated); it is answered as a DF packet
 * would be. Senders use the MTU they learn for such packets too (Linux:
 * ip_sk_use_pmtu() unless IP_PMTUDISC_PROBE), so they fragment at the source
 * from then on. DESIGN.md, "MTU in redirect mode".
 *
 * Private to clovis.bpf.c: included after stat() and parse.h.
 */
#ifndef CLOVIS_BPF_MTU_H
#define CLOVIS_BPF_MTU_H

#define CLV_ICMP4_QUOTE 548  /* 576 - 20 - 8: as much as icmp_send() quotes */
#define CLV_ICMP6_QUOTE 1232 /* 1280 - 40 - 8: as icmp6_send() */
#define CLV_IPV6_MIN_MTU 1280

/* The MTU a link's device had when this CPU last asked: a packet no larger
 * fits without a helper call (bpf_check_mtu() was ~6 ns a packet on the edge
 * bench). Asked again after MTU_RECHECK_NS, and whenever a packet is larger,
 * so a raised MTU is seen at once and a lowered one within that time.
 * Internal to the program, per CPU, index link slot. */
struct mtu_cache {
	__u32 ifindex;
	__u32 mtu;
	__u64 checked_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct mtu_cache);
	__uint(max_entries, CLV_MAX_LINKS);
} clv_mtus SEC(".maps");

#define MTU_RECHECK_NS 1000000000ull

/* The link's MTU when the packet is too big for it, else 0. A GSO packet is
 * judged by its segments (the link's transmit segments it), as
 * ip_exceeds_mtu() does. IPv6 packets up to 1280 bytes fit every IPv6 link.
 * `now`: bpf_ktime_get_coarse_ns() of this packet. */
static __always_inline __u32 exceeds_mtu(struct __sk_buff *skb, struct pkt *p, __u32 slot, __u32 ifindex,
                                         __u64 now)
{
	__u32 len = skb->len - p->l3;
	struct mtu_cache *c;
	long rc;

	if (p->t.family == CLV_AF_INET6 && len <= CLV_IPV6_MIN_MTU)
		return 0;
	slot &= CLV_MAX_LINKS - 1;
	c = bpf_map_lookup_elem(&clv_mtus, &slot);
	if (c && c->ifindex == ifindex && len <= c->mtu && now - c->checked_ns < MTU_RECHECK_NS)
		return 0; /* a GSO packet this small fits whole */
	if (skb->gso_size) {
		len = 0; /* with BPF_MTU_CHK_SEGS the helper takes skb->len */
		rc = bpf_check_mtu(skb, ifindex, &len, 0, BPF_MTU_CHK_SEGS);
		return rc > 0 ? len : 0;
	}
	rc = bpf_check_mtu(skb, ifindex, &len, 0, 0); /* len in: L3 length; out: the MTU */
	if (rc < 0)
		return 0; /* the device is gone: the redirect fails or not, as before */
	if (c) {
		c->ifindex = ifindex;
		c->mtu = len;
		c->checked_ns = now;
	}
	return rc > 0 ? len : 0;
}

static __always_inline __u16 csum_fold32(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The Internet checksum's partial sum of `len` bytes (a multiple of 4, at
 * most CLV_ICMP6_QUOTE) of the packet from `off`, added to `sum`. */
static __always_inline int sum_bytes(struct __sk_buff *skb, __u32 off, __u32 len, __u32 *sum, __u32 *buf)
{
	__u32 end = off + len;
	int i;

	for (i = 0; i < CLV_ICMP6_QUOTE / 64; i++) {
		if (off + 64 > end)
			break;
		if (bpf_skb_load_bytes(skb, off, buf, 64))
			return -1;
		*sum = bpf_csum_diff(NULL, 0, buf, 64, *sum);
		off += 64;
	}
	for (i = 0; i < 16; i++) {
		if (off + 4 > end)
			break;
		if (bpf_skb_load_bytes(skb, off, buf, 4))
			return -1;
		*sum = bpf_csum_diff(NULL, 0, buf, 4, *sum);
		off += 4;
	}
	return 0;
}

struct too_big_hdr {
	union {
		struct bpf_fib_lookup fib; /* first, for the answer's source */
		struct {
			struct iphdr ip;
			__u8 icmp[8];
		} v4;
		struct {
			struct ipv6hdr ip;
			__u8 icmp[8];
		} v6;
		__u32 w[16]; /* also the checksum's read buffer */
	};
};

/* Our address on the way back to the client, as the kernel's ICMP picks it
 * (the route's preferred source). -1 when there is none. `fib`: scratch. */
static __always_inline int source_towards(struct __sk_buff *skb, struct pkt *p, __be32 *src,
                                          struct bpf_fib_lookup *fib)
{
	long rc;

	__builtin_memset(fib, 0, sizeof(*fib));
	fib->ifindex = skb->ifindex;
	if (p->t.family == CLV_AF_INET) {
		fib->family = AF_INET;
		fib->ipv4_dst = p->t.src[0];
	} else {
		fib->family = AF_INET6;
		__builtin_memcpy(fib->ipv6_dst, p->t.src, 16);
	}
	rc = bpf_fib_lookup(skb, fib, sizeof(*fib), BPF_FIB_LOOKUP_SRC | BPF_FIB_LOOKUP_SKIP_NEIGH);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return -1;
	if (p->t.family == CLV_AF_INET)
		src[0] = fib->ipv4_src;
	else
		__builtin_memcpy(src, fib->ipv6_src, 16);
	return 0;
}

/* Turns the packet into the ICMP error about it and sends that back to the
 * client. The quote is the packet as it arrived (TTL not yet decremented,
 * not yet translated): what ip_forward() quotes. A BPF subprogram: off the
 * fast path's code and stack layout. */
static __noinline int answer_too_big(struct __sk_buff *skb, struct pkt *p, __u32 mtu)
{
	const int v6 = p->t.family == CLV_AF_INET6;
	__u32 hdr = v6 ? sizeof(struct ipv6hdr) + 8 : sizeof(struct iphdr) + 8;
	__u32 quote = skb->len - p->l3, sum = 0;
	struct too_big_hdr h;
	__be32 src[4] = {};

	stat(CLV_STAT_TOO_BIG);
	/* Never an error about an error, as icmp_send() (only echoes have ids) */
	if (((p->t.proto == IPPROTO_ICMP || p->t.proto == IPPROTO_ICMPV6) && !p->icmp_echo) ||
	    source_towards(skb, p, src, &h.fib))
		return TC_ACT_SHOT;
	if (quote > (v6 ? CLV_ICMP6_QUOTE : CLV_ICMP4_QUOTE))
		quote = v6 ? CLV_ICMP6_QUOTE : CLV_ICMP4_QUOTE;
	quote &= ~3u;
	if (bpf_skb_change_tail(skb, p->l3 + quote, 0) || sum_bytes(skb, p->l3, quote, &sum, h.w))
		goto fail;
	__builtin_memset(&h, 0, sizeof(h));
	if (v6) {
		__be32 pseudo[2] = {bpf_htonl(8 + quote), bpf_htonl(IPPROTO_ICMPV6)};

		h.v6.ip.version = 6;
		h.v6.ip.payload_len = bpf_htons(8 + quote);
		h.v6.ip.nexthdr = IPPROTO_ICMPV6;
		h.v6.ip.hop_limit = 64;
		__builtin_memcpy(&h.v6.ip.saddr, src, 16);
		__builtin_memcpy(&h.v6.ip.daddr, p->t.src, 16);
		h.v6.icmp[0] = 2; /* packet too big */
		*(__be32 *)&h.v6.icmp[4] = bpf_htonl(mtu);
		sum = bpf_csum_diff(NULL, 0, (__be32 *)&h.v6.ip.saddr, 32, sum);
		sum = bpf_csum_diff(NULL, 0, pseudo, 8, sum);
		sum = bpf_csum_diff(NULL, 0, (__be32 *)h.v6.icmp, 8, sum);
		*(__u16 *)&h.v6.icmp[2] = csum_fold32(sum);
	} else {
		h.v4.ip.version = 4;
		h.v4.ip.ihl = 5;
		h.v4.ip.tos = ((p->t.dscp << 2) & 0x1e) | 0xc0; /* as icmp_send() */
		h.v4.ip.tot_len = bpf_htons(sizeof(struct iphdr) + 8 + quote);
		h.v4.ip.ttl = 64;
		h.v4.ip.protocol = IPPROTO_ICMP;
		h.v4.ip.saddr = src[0];
		h.v4.ip.daddr = p->t.src[0];
		h.v4.ip.check =
		        csum_fold32(bpf_csum_diff(NULL, 0, (__be32 *)&h.v4.ip, sizeof(struct iphdr), 0));
		h.v4.icmp[0] = 3; /* destination unreachable */
		h.v4.icmp[1] = 4; /* fragmentation needed */
		*(__be16 *)&h.v4.icmp[6] = bpf_htons(mtu > 0xffff ? 0xffff : mtu);
		sum = bpf_csum_diff(NULL, 0, (__be32 *)h.v4.icmp, 8, sum);
		*(__u16 *)&h.v4.icmp[2] = csum_fold32(sum);
	}
	if (bpf_skb_adjust_room(skb, hdr, BPF_ADJ_ROOM_MAC, 0) ||
	    bpf_skb_store_bytes(skb, p->l3, &h, v6 ? sizeof(h.v6) : sizeof(h.v4), BPF_F_RECOMPUTE_CSUM))
		goto fail;
	/* The headers are ours and correct: let the client check them. */
	bpf_csum_level(skb, BPF_CSUM_LEVEL_RESET);
	/* To the client's neighbour, found by a FIB lookup on its address. */
	return bpf_redirect_neigh(skb->ifindex, NULL, 0, 0);
fail:
	stat(CLV_STAT_REDIRECT_ERR);
	return TC_ACT_SHOT;
}

#endif /* CLOVIS_BPF_MTU_H */
