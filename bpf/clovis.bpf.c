// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * clovis TC data path.
 *
 *   clv_lan_in   LAN ingress: classify new flows (tuple-space walk of the
 *                active rule bank), pin them to a link, steer every packet:
 *                route mode sets skb->mark, redirect mode source-NATs (when
 *                asked), decrements TTL and bpf_redirect_neigh()s (a packet
 *                too big for the link is answered with ICMP, mtu.h); a client's
 *                ICMP error about a translated flow follows that flow; later
 *                fragments follow their datagram's flow (frag.h).
 *   clv_wan_in   WAN ingress: return traffic of redirect-mode flows: undo
 *                the NAT and redirect to the LAN interface the flow came from;
 *                ICMP errors about translated packets, translated back.
 *   clv_lan_out  LAN egress: counts return traffic of route-mode flows (it
 *                went through the kernel's routing and NAT).
 *
 * Everything this file shares with user space is in clovis/abi.h.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/socket.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "clovis/abi.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#ifndef EEXIST
#define EEXIST 17
#endif

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---------------------------------------------------------------- maps -- */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct clv_rule_key);
	__type(value, struct clv_rule_val);
	__uint(max_entries, CLV_BANKS *CLV_MAX_ENTRIES);
} clv_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct clv_shape);
	__uint(max_entries, CLV_BANKS *CLV_MAX_SHAPES);
} clv_shapes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct clv_bank_meta);
	__uint(max_entries, CLV_BANKS);
} clv_meta SEC(".maps");

/* The active bank: one u32, flipped by user space after the shadow bank is complete. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} clv_active SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct clv_policy);
	__uint(max_entries, CLV_BANKS *CLV_MAX_POLICIES);
} clv_policies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct clv_link);
	__uint(max_entries, CLV_MAX_LINKS);
} clv_links SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct clv_link_state);
	__uint(max_entries, 1);
} clv_lstate SEC(".maps");

/* (bank << 32 | ifindex) -> iif id of the rules of that bank */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, __u32);
	__uint(max_entries, CLV_BANKS *CLV_MAX_IIFS);
} clv_iifs SEC(".maps");

/* Assured flows and their NAT bindings (abi.h): entries leave only by
 * expiry or their flow's end, never to make room. Allocated as used. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct clv_flow_key);
	__type(value, struct clv_flow);
	__uint(max_entries, 262144); /* set by the loader from --flow-table-size */
} clv_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct clv_nat_key);
	__type(value, struct clv_flow_key);
	__uint(max_entries, 262144); /* as clv_flows */
} clv_nat SEC(".maps");

/* Flows not yet assured, and their NAT bindings: the least recently used
 * give way when full. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct clv_flow_key);
	__type(value, struct clv_flow);
	__uint(max_entries, 262144); /* as clv_flows */
} clv_flows_new SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct clv_nat_key);
	__type(value, struct clv_flow_key);
	__uint(max_entries, 262144); /* as clv_flows */
} clv_nat_new SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct clv_link_stats);
	__uint(max_entries, CLV_MAX_LINKS);
} clv_lstats SEC(".maps");

/* Per link, by reason: packets dropped after the link was chosen (abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, CLV_LINK_DROP_ENTRIES);
} clv_link_drops SEC(".maps");

/* Flows moved by failover, from link to link (abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, CLV_MIGRATION_ENTRIES);
} clv_migrations SEC(".maps");

/* The links each policy's live flows must leave (abi.h, struct clv_leave). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct clv_leave);
	__uint(max_entries, CLV_MAX_POLICIES);
} clv_leave SEC(".maps");

/* Flows moved off a link their policy leaves, index
 * reason * CLV_MIGRATION_ENTRIES + from * CLV_MAX_LINKS + to (abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, CLV_MOVE_ENTRIES);
} clv_moves SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, CLV_STAT_MAX);
} clv_stats SEC(".maps");

/* ------------------------------------------------------------- helpers -- */

static __always_inline void stat(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&clv_stats, &idx);

	if (v)
		*v += 1;
}

#include "parse.h"

/* Per-CPU working memory for what would not fit the 512-byte stack of
 * clv_lan_in's deepest call chain: the flow a new flow's packet builds. Not
 * pinned. Only clv_lan_in uses it, and it never runs twice at once on one
 * CPU (what it sends leaves after it returns). The packet itself stays on
 * clv_lan_in's stack: every known flow's packet would otherwise pay the
 * lookup and writes through a map value (~2 ns, docs/BENCHMARKS.md). */
struct lan_scratch {
	struct clv_flow f;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct lan_scratch);
	__uint(max_entries, 1);
} clv_scratch SEC(".maps");

static __always_inline struct lan_scratch *lan_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&clv_scratch, &zero);
}

#include "classify.h"

#include "rewrite.h"

#include "conntrack.h"

#include "nat.h"

/* ------------------------------------------------------------- steering -- */

#include "link_stats.h"

#include "mtu.h"

/* Sends a packet of a pinned flow out of its link. `check_mtu`: whether a
 * packet too big for a redirect link is answered with ICMP (not for ICMP
 * errors, which are never answered). */
static __always_inline int steer(struct __sk_buff *skb, struct pkt *p, struct clv_flow *f, int check_mtu)
{
	__u32 slot = f->link & (CLV_MAX_LINKS - 1);
	/* Filled with whole 8-byte words: see pack2x32(). */
	union {
		struct bpf_redir_neigh nh;
		__u64 w[3];
	} nh;
	struct clv_link *l;
	__u32 mtu;

	l = bpf_map_lookup_elem(&clv_links, &slot);
	if (!l || !l->ifindex)
		return TC_ACT_UNSPEC;
	if (l->mode == CLV_MODE_ROUTE) {
		skb->mark = l->mark;
		count_link(slot, p->wire_pkts, skb->len, 1);
		return TC_ACT_UNSPEC;
	}
	/* ip_forward()'s order: an expiring TTL first, then the MTU. */
	if (check_mtu && p->ttl > 1) {
		mtu = exceeds_mtu(skb, p, slot, l->ifindex, f->last_ns);
		if (mtu) {
			link_drop(slot, CLV_LINK_DROP_TOO_BIG);
			return answer_too_big(skb, p, mtu);
		}
	}
	if (dec_ttl(skb, p)) {
		stat(CLV_STAT_TTL_EXPIRED);
		return TC_ACT_UNSPEC;
	}
	if ((f->flags & CLV_FLOW_NAT) && rewrite(skb, p, 0, f->nat_addr, f->nat_port)) {
		stat(CLV_STAT_REDIRECT_ERR);
		link_drop(slot, CLV_LINK_DROP_REDIRECT_ERR);
		return TC_ACT_SHOT; /* half-rewritten: never let it out */
	}
	count_link(slot, p->wire_pkts, skb->len, 1);
	if (l->flags & CLV_LINK_P2P)
		return bpf_redirect(l->ifindex, 0);
	if (p->t.family == CLV_AF_INET) {
		nh.w[0] = pack2x32(AF_INET, l->gw4);
		nh.w[1] = 0;
		nh.w[2] = 0;
	} else {
		nh.w[0] = pack2x32(AF_INET6, l->gw6[0]);
		nh.w[1] = pack2x32(l->gw6[1], l->gw6[2]);
		nh.w[2] = pack2x32(l->gw6[3], 0);
	}
	return bpf_redirect_neigh(l->ifindex, &nh.nh, sizeof(nh.nh), 0);
}

#define NO_NAT_PORT ((struct clv_flow *)1) /* new_flow(): drop the packet */

/* A new flow: classify, pick a link, NAT if the link asks, record it in the
 * unreplied table. NO_NAT_PORT when its link translates and no port is free. */
static __always_inline struct clv_flow *new_flow(struct __sk_buff *skb, struct pkt *p)
{
	struct lan_scratch *sc = lan_scratch();
	struct clv_flow *f;

	if (!sc)
		return NULL;
	f = &sc->f;
	__builtin_memset(f, 0, sizeof(*f));
	f->first_ns = bpf_ktime_get_coarse_ns();
	f->lan_ifindex = skb->ifindex;
	if (host_bound(skb, p)) {
		f->flags |= CLV_FLOW_LOCAL;
		stat(CLV_STAT_LOCAL);
	} else {
		classify(p, skb, f);
		if (f->action == CLV_ACT_STEER && pick_link(p, f) == 0) {
			if (setup_nat(p, f)) {
				link_drop(f->link, CLV_LINK_DROP_NAT_REFUSED);
				return NO_NAT_PORT;
			}
			link_event(f->link, 0);
		}
	}
	f->state = clv_ct_next(CLV_CT_NEW, &f->ct_flags, p->fk.proto, p->tcp_flags, 0);
	stat(CLV_STAT_NEW_FLOW);
	bpf_map_update_elem(&clv_flows_new, &p->fk, f, BPF_ANY);
	return bpf_map_lookup_elem(&clv_flows_new, &p->fk);
}

/* Flows leaving an up link their policy leaves (clv_leave). */
#include "leave.h"

/* A pinned flow whose link is gone or down: follow the policy. Returns 0 to
 * go on steering (possibly on a new link), -1 when the packet is dropped. */
static __always_inline int revalidate(struct pkt *p, struct clv_flow *f)
{
	__u32 zero = 0, slot = f->link & (CLV_MAX_LINKS - 1), idx = f->policy;
	struct clv_link_state *st = bpf_map_lookup_elem(&clv_lstate, &zero);
	struct clv_link *l = bpf_map_lookup_elem(&clv_links, &slot);
	struct clv_policy *pol;

	if (!st || !l)
		return 0;
	if (l->epoch != f->link_epoch) {
		/* The slot was removed or reused by a new mapping: start over. */
		stat(CLV_STAT_RECLASSIFIED);
		return 1;
	}
	if ((st->up >> slot) & 1)
		return (l->flags & CLV_LINK_LEAVE) ? leave_link(p, f, l, slot) : 0;
	{
		/* The policy lives in the bank that classified the flow; once that
		 * bank has been reused by a later apply, classify afresh. */
		__u32 bank = idx / CLV_MAX_POLICIES;
		struct clv_bank_meta *meta = bpf_map_lookup_elem(&clv_meta, &bank);

		if (!meta || meta->generation != f->generation)
			return 1;
	}
	pol = bpf_map_lookup_elem(&clv_policies, &idx);
	if (!pol || pol->on_down == CLV_ONDOWN_KEEP)
		return 0;
	if (pol->on_down == CLV_ONDOWN_DROP) {
		stat(CLV_STAT_DROP_NO_LINK);
		link_drop(slot, CLV_LINK_DROP_LINK_DOWN);
		return -1;
	}
	if (f->flags & CLV_FLOW_NAT)
		return 1; /* a new source address: the flow restarts as a new one */
	if (pick_link(p, f) == 0) {
		/* Onto a link that translates: with no port free, the flow
		 * starts over (and its packet is dropped there). */
		if (setup_nat(p, f))
			return 1;
		f->flags |= CLV_FLOW_MIGRATED;
		stat(CLV_STAT_MIGRATED);
		link_event(f->link, 1);
		count_migration(slot, f->link);
	}
	return 0;
}

/* ---------------------------------------------- ICMP errors under NAT -- */

#include "nat_icmp.h"

/* -------------------------------------------- fragments, unparseable -- */

#include "frag.h"

/* A packet the parser cannot classify (truncated or invalid headers, an IPv6
 * extension chain deeper than it walks): the rules cannot be applied to it,
 * so it is not left to slip past them; the active rule set's `unparsed:`
 * decides (drop unless it says pass; pass before any rule set is applied). */
static __always_inline int unparsed(void)
{
	struct clv_bank_meta *meta;
	__u32 zero = 0, *bank, b;

	stat(CLV_STAT_MALFORMED);
	bank = bpf_map_lookup_elem(&clv_active, &zero);
	b = bank ? (*bank & 1) : 0;
	meta = bpf_map_lookup_elem(&clv_meta, &b);
	if (!meta || meta->generation == 0 || meta->unparsed == CLV_UNPARSED_PASS)
		return TC_ACT_UNSPEC;
	stat(CLV_STAT_UNPARSED_DROP);
	return TC_ACT_SHOT;
}

/* clv_lan_in's packets that parse() does not return PARSE_OK for. A BPF
 * subprogram, so that none of this is in the TCP/UDP path's code; returns
 * FRAG_TOO_BIG as lan_fragment() does. */
static __noinline int lan_not_parsed(struct __sk_buff *skb, struct pkt *p, int r, __u32 *mtu)
{
	if (r == PARSE_FRAGMENT)
		return lan_fragment(skb, p, mtu);
	if (r != PARSE_NOT_IP)
		return unparsed();
	stat(CLV_STAT_NOT_IP);
	return TC_ACT_UNSPEC;
}

/*
 * A flow is a value of clv_flows or of clv_flows_new; to the verifier those
 * are two pointer types, and every path that follows a lookup would be
 * walked once for each. lan_flow() below is a global BPF function, verified
 * once with the flow as plain memory: the verifier's work stays what it was
 * with one table. lan_steer() is inlined into it (as a global function of
 * its own, its frame would take the call chain over 512 bytes of stack once
 * the packet is on clv_lan_in's).
 */

/* clv_lan_in for a packet the flow tables know (`f`), or a new flow (`f`
 * NULL); `in_new`: f is in the unreplied table. */
__noinline int lan_flow(struct __sk_buff *skb, struct pkt *p, struct clv_flow *f, int in_new);
/* The rest: the flow's counters and connection state, then its verdict. */
static __always_inline int lan_steer(struct __sk_buff *skb, struct pkt *p, struct clv_flow *f, int in_new);

SEC("tc")
int clv_lan_in(struct __sk_buff *skb)
{
	struct pkt pk = {};
	struct clv_flow *f;
	struct pkt *p = &pk;
	int r, in_new;

	stat(CLV_STAT_PACKETS);
	r = parse(skb, p);
	if (r != PARSE_OK) {
		__u32 mtu = 0;

		r = lan_not_parsed(skb, p, r, &mtu);
		return r == FRAG_TOO_BIG ? answer_too_big(skb, p, mtu) : r;
	}
	if (!p->has_ports && !p->icmp_echo && (p->t.proto == IPPROTO_ICMP || p->t.proto == IPPROTO_ICMPV6)) {
		r = nat_icmp_error_out(skb, p);
		if (r != NOT_AN_ERROR_OF_OURS)
			return r;
	}
	f = find_flow(&p->fk, &in_new);
	return lan_flow(skb, p, f, in_new);
}

__noinline int lan_flow(struct __sk_buff *skb, struct pkt *p, struct clv_flow *f, int in_new)
{
	int r;

	if (!p)
		return TC_ACT_UNSPEC;
	if (f) {
		stat(CLV_STAT_FLOW_HIT);
		if (f->flags & CLV_FLOW_NAT_PENDING) {
			/* A proxy's report pinned it to a link that translates:
			 * the port is claimed here, as for a new flow. */
			f->flags &= ~CLV_FLOW_NAT_PENDING;
			if (f->action == CLV_ACT_STEER && setup_nat(p, f)) {
				link_drop(f->link, CLV_LINK_DROP_NAT_REFUSED);
				end_flow(&p->fk, f, in_new);
				return TC_ACT_SHOT;
			}
		}
		if (f->action == CLV_ACT_STEER) {
			r = revalidate(p, f);
			if (r < 0)
				return TC_ACT_SHOT;
			if (r > 0) {
				end_flow(&p->fk, f, in_new);
				f = NULL;
			}
		}
	}
	if (!f) {
		f = new_flow(skb, p);
		in_new = 1;
	}
	if (!f)
		return TC_ACT_UNSPEC;
	if (f == NO_NAT_PORT)
		return TC_ACT_SHOT;
	return lan_steer(skb, p, f, in_new);
}

static __always_inline int lan_steer(struct __sk_buff *skb, struct pkt *p, struct clv_flow *f, int in_new)
{
	if (!p || !f)
		return TC_ACT_UNSPEC;
	if (p->frag)
		frag_remember(p, FRAG_LAN, &p->fk);
	f->last_ns = bpf_ktime_get_coarse_ns();
	__sync_fetch_and_add(&f->pkts_out, p->wire_pkts);
	__sync_fetch_and_add(&f->bytes_out, skb->len);
	if (f->action == CLV_ACT_STEER && f->lan_ifindex != skb->ifindex && !(f->flags & CLV_FLOW_LOCAL)) {
		if (f->lan_ifindex) {
			/* Same tuple, another LAN: not this flow's packet. */
			stat(CLV_STAT_WRONG_LAN);
			return TC_ACT_UNSPEC;
		}
		f->lan_ifindex = skb->ifindex; /* pinned by a proxy's report: its first packet's */
	}
	/* Last of the writes: once assured, the flow's entry is a copy in
	 * clv_flows; f (read below) is the old one's, unchanged. */
	if (ct_needed(f, p, 0))
		ct_track(&p->fk, f, in_new, p, 0);
	if (f->flags & CLV_FLOW_LOCAL)
		return TC_ACT_UNSPEC;
	switch (f->action) {
	case CLV_ACT_STEER:
		return steer(skb, p, f, 1);
	case CLV_ACT_DROP:
		stat(f->flags & CLV_FLOW_LAST_RESORT ? CLV_STAT_DROP_NO_LINK : CLV_STAT_DROP_RULE);
		return TC_ACT_SHOT;
	case CLV_ACT_BYPASS:
		stat(CLV_STAT_BYPASS);
		return TC_ACT_UNSPEC;
	}
	stat(CLV_STAT_NOT_STEERED);
	return TC_ACT_UNSPEC;
}

/* The flow a return packet belongs to, seen from the LAN side. */
static __always_inline void reverse_key(struct pkt *p, struct clv_flow_key *k)
{
	__builtin_memcpy(k->src, p->fk.dst, 16);
	__builtin_memcpy(k->dst, p->fk.src, 16);
	k->sport = p->icmp_echo ? p->fk.sport : p->fk.dport;
	k->dport = p->icmp_echo ? 0 : p->fk.sport;
	k->proto = p->fk.proto;
	k->family = p->fk.family;
	k->pad = 0;
}

SEC("tc")
int clv_wan_in(struct __sk_buff *skb)
{
	struct clv_flow_key k = {};
	struct clv_nat_key nk = {};
	struct clv_flow_key *orig;
	struct clv_flow *f;
	struct pkt p = {};
	int r, in_new;

	r = parse(skb, &p);
	if (r == PARSE_FRAGMENT)
		return wan_fragment(skb, &p);
	if (r != PARSE_OK)
		return TC_ACT_UNSPEC;
	if ((p.t.proto == IPPROTO_ICMP || p.t.proto == IPPROTO_ICMPV6) && !p.icmp_echo) {
		r = nat_icmp_error_in(skb, &p);
		if (r != NOT_AN_ERROR_OF_OURS)
			return r;
	}
	__builtin_memcpy(nk.remote, p.fk.src, 16);
	__builtin_memcpy(nk.local, p.fk.dst, 16);
	nk.remote_port = p.icmp_echo ? 0 : p.fk.sport;
	nk.local_port = p.icmp_echo ? p.fk.sport : p.fk.dport;
	nk.proto = p.fk.proto;
	nk.family = p.fk.family;
	orig = find_nat(&nk);
	if (orig) {
		k = *orig;
	} else {
		reverse_key(&p, &k);
	}
	f = find_flow(&k, &in_new);
	if (!f || f->mode != CLV_MODE_REDIRECT || f->action != CLV_ACT_STEER)
		return TC_ACT_UNSPEC;
	if (orig && !(f->flags & CLV_FLOW_NAT))
		return TC_ACT_UNSPEC;
	if (ct_needed(f, &p, 1)) {
		f = ct_track(&k, f, in_new, &p, 1);
		if (!f)
			return TC_ACT_UNSPEC;
	}
	if (p.frag)
		frag_remember(&p, FRAG_WAN, &k);
	stat(CLV_STAT_RETURN);
	__sync_fetch_and_add(&f->pkts_in, p.wire_pkts);
	__sync_fetch_and_add(&f->bytes_in, skb->len);
	f->last_ns = bpf_ktime_get_coarse_ns();
	count_link(f->link, p.wire_pkts, skb->len, 0);
	if (dec_ttl(skb, &p))
		return TC_ACT_UNSPEC;
	if (orig && rewrite(skb, &p, 1, k.src, k.sport)) {
		stat(CLV_STAT_REDIRECT_ERR);
		link_drop(f->link, CLV_LINK_DROP_REDIRECT_ERR);
		return TC_ACT_SHOT;
	}
	/* The client's neighbour on the LAN is found by a FIB lookup on its address. */
	return bpf_redirect_neigh(f->lan_ifindex, NULL, 0, 0);
}

SEC("tc")
int clv_lan_out(struct __sk_buff *skb)
{
	struct clv_flow_key k = {};
	struct clv_flow *f;
	struct pkt p = {};
	int in_new;

	if (parse(skb, &p) != PARSE_OK)
		return TC_ACT_UNSPEC;
	reverse_key(&p, &k);
	f = find_flow(&k, &in_new);
	/* Redirect-mode returns were counted (and tracked) at WAN ingress. */
	if (!f || (f->action == CLV_ACT_STEER && f->mode == CLV_MODE_REDIRECT))
		return TC_ACT_UNSPEC;
	if (ct_needed(f, &p, 1)) {
		f = ct_track(&k, f, in_new, &p, 1);
		if (!f)
			return TC_ACT_UNSPEC;
	}
	__sync_fetch_and_add(&f->pkts_in, p.wire_pkts);
	__sync_fetch_and_add(&f->bytes_in, skb->len);
	f->last_ns = bpf_ktime_get_coarse_ns();
	if (f->action == CLV_ACT_STEER)
		count_link(f->link, p.wire_pkts, skb->len, 0);
	return TC_ACT_UNSPEC;
}
