/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * clovis ABI: the ONLY definition of what user space writes into the BPF maps
 * and what the TC program reads. Included verbatim by the BPF C program and by
 * the C++ core (compiler, classifier, simulator), so the two cannot drift.
 *
 * Rules for this file: fixed-width types from <linux/types.h> only, explicit
 * padding, no bool/enum/bitfields in map structs, size/offset asserts below.
 *
 * Classification is a tuple-space search (as in Open vSwitch's classifier):
 * every compiled rule entry belongs to a "shape" (family, prefix lengths,
 * port masks, which scalar fields are matched). A lookup masks the packet's
 * tuple with each shape's masks and probes ONE hash map with the result, so
 * the cost is O(number of shapes), independent of the number of rules.
 * Shapes are sorted by the best priority they hold; the walk stops as soon as
 * no remaining shape can beat the best hit (first match by priority).
 */
#ifndef CLOVIS_ABI_H
#define CLOVIS_ABI_H

#include <linux/types.h>

/* 2: connection tracking (clv_flow.state, ct_flags; 96 bytes), flows and NAT
 *    bindings split into an assured table (HASH) and an unreplied one (LRU).
 *    A pinned version-1 flow table is migrated (agentd/kernel/map_migration). */
#define CLV_ABI_VERSION 2

#define CLV_MAX_SHAPES 128 /* per bank; one hash probe each, worst case */
#define CLV_MAX_LINKS 64   /* link slots; link state is a 64-bit mask */
#define CLV_MAX_POLICIES 4096
#define CLV_POLICY_MAX_MEMBERS 16
#define CLV_MAX_RULES 262144    /* rule ids per bank */
#define CLV_MAX_ENTRIES 1048576 /* compiled table entries per bank */
#define CLV_MAX_IIFS 256        /* distinct ingress interfaces named by rules */
#define CLV_BANKS 2             /* shadow bank + active bank, flipped atomically */
#define CLV_PRIO_NONE 0xffffffffu

/* clv_tuple.family, clv_shape.family */
#define CLV_AF_INET 4
#define CLV_AF_INET6 6

/* clv_rule_val.action, clv_bank_meta.default_action */
#define CLV_ACT_NONE 0   /* no rule and no default: not steered */
#define CLV_ACT_STEER 1  /* steer by policy clv_rule_val.policy */
#define CLV_ACT_BYPASS 2 /* leave to the host's routing */
#define CLV_ACT_DROP 3

/* clv_bank_meta.unparsed (0, what older releases wrote there, is the safe one) */
#define CLV_UNPARSED_DROP 0
#define CLV_UNPARSED_PASS 1

/* clv_link.mode */
#define CLV_MODE_ROUTE 1
#define CLV_MODE_REDIRECT 2

/* clv_link.snat */
#define CLV_SNAT_NONE 0
#define CLV_SNAT_ADDRESS 1
#define CLV_SNAT_MASQUERADE 2

/* clv_link.flags */
#define CLV_LINK_GW4 0x1
#define CLV_LINK_GW6 0x2
#define CLV_LINK_P2P 0x4
#define CLV_LINK_GWMAC 0x8
/* Written by the agent (Dataplane::set_leave), not compiled: a summary of
 * clv_leave, so that a flow's packet tests one bit of the clv_link it loads
 * anyway and looks at its policy's clv_leave entry only when it is set. */
#define CLV_LINK_LEAVE 0x10       /* some policy's live flows must leave this link */
#define CLV_LINK_LEAVE_FORCE 0x20 /* ... and some policy moves its translated flows too */
/* Route mode: the host masquerades on this link (`masquerade: true`): a flow
 * changes its source address when it moves onto or off it, as with snat. */
#define CLV_LINK_MASQ 0x40

/* clv_policy.on_down */
#define CLV_ONDOWN_MIGRATE 0
#define CLV_ONDOWN_KEEP 1
#define CLV_ONDOWN_DROP 2

/* clv_policy.last_resort */
#define CLV_LAST_DEFAULT 0 /* no usable link: leave to the host's routing */
#define CLV_LAST_DROP 1

/* clv_policy.sticky: which tuple fields choose among weighted members */
#define CLV_STICKY_FLOW 0    /* 5-tuple: every flow independently */
#define CLV_STICKY_SOURCE 1  /* source address: a client keeps one link */
#define CLV_STICKY_SRC_DST 2 /* source + destination address */

/* clv_policy.flags */
#define CLV_POL_AVOID_DEGRADED 0x1

/* What the classifier looks at: filled from the packet by the TC program, from
 * a described flow by the simulator. Addresses in network byte order (IPv4 in
 * word 0, rest zero); ports, mark and iif_id in host byte order. */
struct clv_tuple {
	__be32 src[4];
	__be32 dst[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 dscp;
	__u8 family;
	__u8 pad;
	__u32 mark;
	__u32 iif_id; /* from clv_iifs (ifindex -> id), 0 when not named by any rule */
};

/* Key of the compiled rule table (BPF_MAP_TYPE_HASH). A tuple masked by one
 * shape. bank selects the shadow or active rule set. */
struct clv_rule_key {
	__u8 bank;
	__u8 shape;
	__u8 proto;
	__u8 dscp;
	__u16 sport;
	__u16 dport;
	__u32 mark;
	__u32 iif_id;
	__be32 src[4];
	__be32 dst[4];
};

struct clv_rule_val {
	__u32 priority; /* lower wins */
	__u32 rule_id;  /* index into per-bank rule metadata and counters */
	__u16 policy;
	__u8 action;
	__u8 pad;
};

/* Array map, index bank * CLV_MAX_SHAPES + i, sorted by min_priority. */
struct clv_shape {
	__u32 min_priority; /* best priority of any entry in this shape */
	__u8 family;
	__u8 src_plen;
	__u8 dst_plen;
	__u8 proto_mask;
	__u8 dscp_mask;
	__u8 iif_on;
	__u16 sport_mask;
	__u16 dport_mask;
	__u16 pad;
	__u32 mark_mask;
	__be32 src_mask[4];
	__be32 dst_mask[4];
};

/* Array map, index bank. Written before the bank is activated. */
struct clv_bank_meta {
	__u32 generation;
	__u32 n_shapes;
	__u32 n_rules;
	__u16 default_policy;
	__u8 default_action;
	__u8 unparsed;         /* CLV_UNPARSED_*: packets the program cannot classify */
	__u32 default_rule_id; /* rule id used to count default-matched flows */
	__u32 pad2;
};

struct clv_member {
	__u8 link; /* link slot */
	__u8 tier; /* lowest tier with a usable link wins */
	__u16 weight;
};

/* Array map, index bank * CLV_MAX_POLICIES + policy. */
struct clv_policy {
	__u8 n_members;
	__u8 on_down;
	__u8 last_resort;
	__u8 sticky;
	__u8 flags;
	__u8 pad[3];
	struct clv_member members[CLV_POLICY_MAX_MEMBERS];
};

/* Array map, index link slot. Slots are stable across applies so that live
 * flows keep pointing at the same link; epoch changes when a slot is reused. */
struct clv_link {
	__u32 ifindex; /* resolved by the agent; 0 in compiled output */
	__u32 mark;    /* route mode: skb->mark; policy routing picks the table */
	__u32 table;   /* route mode: routing table id */
	__u32 epoch;
	__u8 mode;
	__u8 snat;
	__u8 flags;
	__u8 pad;
	__u8 gw_mac[6];
	__u16 pad2;
	__be32 gw4;
	__be32 gw6[4];
	__be32 snat4;
	__be32 snat6[4];
};

/* Array map clv_leave, index policy (within a bank: the same in both banks of
 * one rule set), CLV_MAX_POLICIES entries, written by the agent
 * (Dataplane::set_leave) whenever its leave decisions change, apart from
 * applies. The live flows of the policy classified by rule set `generation`
 * (clv_flow.generation) that sit on a link in one of the masks move to
 * another member on their next packet (clv_pick_member without the links to
 * leave); when none is usable they stay. A translated flow (clovis's snat,
 * or a link with CLV_LINK_MASQ, at either end of the move) changes its source
 * address when it moves, ending its connection: it moves only when its slot
 * is in `force` too, and then restarts as a new flow. One mask per reason so
 * that each move is counted with its reason (clv_moves); the reasons are
 * OR-ed: a new source of "leave this link" is a new CLV_MOVE_* index. */
#define CLV_MOVE_SLA 0     /* out of the policy's SLA (on-sla-violation) */
#define CLV_MOVE_RETURN 1  /* a better member is back (on-link-up: return) */
#define CLV_MOVE_BUDGET 2  /* a metered link over its budget (policies without metered: allow) */
#define CLV_MOVE_REASONS 4 /* room: a new reason keeps the layouts */
#define CLV_MOVE_ENTRIES (CLV_MOVE_REASONS * CLV_MAX_LINKS * CLV_MAX_LINKS)
struct clv_leave {
	__u64 links[CLV_MOVE_REASONS];
	__u64 force;
	__u32 generation;
	__u32 pad;
};

/* Array map, one entry: which link slots are usable. Written by the agent's
 * health checker; a single value so the program never sees a half update. */
struct clv_link_state {
	__u64 up;
	__u64 degraded;
	__u64 v4; /* links with an IPv4 next hop (or point-to-point) */
	__u64 v6; /* links with an IPv6 next hop (or point-to-point) */
};

/* --- flows, reverse NAT, counters (per-CPU arrays) ---
 *
 * A flow and its NAT binding live in one of two table pairs. A new flow goes
 * into clv_flows_new / clv_nat_new (LRU hashes: under pressure the least
 * recently used unreplied flows give way). Once assured (CLV_CT_ASSURED) it
 * moves to clv_flows / clv_nat (plain hashes: only expiry by state, in user
 * space, or the flow's own end removes an entry; when full, a flow stays in
 * the unreplied pair and the refusal is counted). A flood of new flows can
 * therefore never evict an established connection or take its NAT port. */

/* A flow as seen entering from the LAN. For ICMP echo, sport is the echo id. */
struct clv_flow_key {
	__be32 src[4];
	__be32 dst[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u16 pad;
};

/* clv_flow.flags */
#define CLV_FLOW_NAT 0x1          /* source translated to nat_addr:nat_port */
#define CLV_FLOW_PROXY 0x2        /* pinned by a proxy session report (L7) */
#define CLV_FLOW_MIGRATED 0x4     /* moved off a link that went down */
#define CLV_FLOW_LOCAL 0x8        /* for the host itself or not routable: never steered */
#define CLV_FLOW_LAST_RESORT 0x10 /* no usable link: the policy's last resort decided */
#define CLV_FLOW_NAT_PENDING                                                                                 \
	0x20 /* pinned from user space to a source-NAT link: the                                             \
	      * program translates it from its next packet */

/* clv_flow.state: connection tracking from the packets seen both ways, as
 * Linux's conntrack does it; the state chooses how long an idle flow lives. */
#define CLV_CT_NEW 0         /* seen from the LAN only: TCP SYN sent; others unreplied */
#define CLV_CT_SYN_RECV 1    /* TCP: the remote answered the SYN */
#define CLV_CT_ESTABLISHED 2 /* TCP: handshake done (or picked up mid-stream both ways); others: replied */
#define CLV_CT_FIN_WAIT 3    /* TCP: one side closed (FIN) */
#define CLV_CT_TIME_WAIT 4   /* TCP: both sides closed */
#define CLV_CT_CLOSE 5       /* TCP: reset */
#define CLV_CT_STATES 6

/* clv_flow.ct_flags */
#define CLV_CT_FIN_OUT 0x1 /* FIN seen from the LAN side */
#define CLV_CT_FIN_IN 0x2  /* FIN seen from the remote */
#define CLV_CT_ASSURED                                                                                       \
	0x4 /* reached ESTABLISHED (TCP) or replied (others): lives in                                       \
	     * clv_flows, which new flows cannot evict */

/* TCP header flags (byte 13) */
#define CLV_TCP_FIN 0x01
#define CLV_TCP_SYN 0x02
#define CLV_TCP_RST 0x04
#define CLV_TCP_ACK 0x10

struct clv_flow {
	__u64 first_ns; /* CLOCK_MONOTONIC */
	__u64 last_ns;
	__u64 pkts_out; /* LAN -> WAN, wire packets (GSO segments) */
	__u64 bytes_out;
	__u64 pkts_in; /* WAN -> LAN */
	__u64 bytes_in;
	__u32 rule_id;
	__u32 generation; /* of the rule set that classified it */
	__u32 link_epoch; /* clv_link.epoch when pinned; a mismatch reclassifies */
	__u32 lan_ifindex;
	__be32 nat_addr[4];
	__u16 nat_port;
	__u16 policy;
	__u8 link;
	__u8 action; /* CLV_ACT_* */
	__u8 flags;
	__u8 mode;     /* CLV_MODE_* of the link when pinned */
	__u8 state;    /* CLV_CT_* */
	__u8 ct_flags; /* CLV_CT_FIN_*, CLV_CT_ASSURED */
	__u16 pad;
	__u32 pad2;
};

/* Return traffic of a translated flow: remote = the server, local = nat address. */
struct clv_nat_key {
	__be32 remote[4];
	__be32 local[4];
	__u16 remote_port;
	__u16 local_port;
	__u8 proto;
	__u8 family;
	__u16 pad;
};

/* Per-CPU, index link slot. */
struct clv_link_stats {
	__u64 tx_packets; /* LAN -> WAN over this link */
	__u64 tx_bytes;
	__u64 rx_packets; /* WAN -> LAN */
	__u64 rx_bytes;
	__u64 new_flows;
	__u64 migrated; /* flows moved onto this link by failover */
	__u64 drops;    /* dropped after this link was chosen: the sum of clv_link_drops' reasons */
	__u64 pad;
};

/* Per-CPU, index slot * CLV_LINK_DROP_MAX + CLV_LINK_DROP_*: packets dropped
 * after a link was chosen for them, by reason; clv_link_stats.drops is their
 * sum. Counted only where such a packet is dropped (never on a forwarded
 * packet's path). A new map in ABI 2 (pinned as clv_link_drops; created when
 * an older release's pin directory lacks it): no existing layout changed. */
#define CLV_LINK_DROP_TOO_BIG 0      /* redirect: too big for the link, answered with ICMP (too_big) */
#define CLV_LINK_DROP_NAT_REFUSED 1  /* no NAT port free on this link (nat_port_busy, nat_exhausted) */
#define CLV_LINK_DROP_REDIRECT_ERR 2 /* a header rewrite failed: never sent half-translated */
#define CLV_LINK_DROP_LINK_DOWN 3    /* its link is down and its policy says on-link-down: drop */
#define CLV_LINK_DROP_REASONS 4      /* reasons defined so far */
#define CLV_LINK_DROP_MAX 8          /* room per link: a new reason keeps the map's layout */
#define CLV_LINK_DROP_ENTRIES (CLV_MAX_LINKS * CLV_LINK_DROP_MAX)

/* Per-CPU __u64, index from_slot * CLV_MAX_LINKS + to_slot: flows failover
 * moved from one link to another. The program moves a flow for one reason
 * only, its link being down (policy on-link-down: migrate). New in ABI 2 as
 * clv_link_drops is (pinned as clv_migrations). */
#define CLV_MIGRATION_ENTRIES (CLV_MAX_LINKS * CLV_MAX_LINKS)

/* Per-CPU global counters, index CLV_STAT_*. */
#define CLV_STAT_PACKETS 0   /* packets seen at LAN ingress */
#define CLV_STAT_NOT_IP 1    /* not IPv4/IPv6: passed */
#define CLV_STAT_FRAGMENT 2  /* later IP fragments: they follow their datagram's flow */
#define CLV_STAT_MALFORMED 3 /* unparseable (truncated, IPv6 chain too deep): as `unparsed:` says */
#define CLV_STAT_FLOW_HIT 4
#define CLV_STAT_NEW_FLOW 5
#define CLV_STAT_LOCAL 6       /* new flow for the host itself / not forwarded */
#define CLV_STAT_NOT_STEERED 7 /* no rule, no default */
#define CLV_STAT_BYPASS 8
#define CLV_STAT_DROP_RULE 9
#define CLV_STAT_DROP_NO_LINK 10 /* last resort drop, or on-link-down drop */
#define CLV_STAT_TTL_EXPIRED 11  /* redirect mode: left to the kernel for ICMP */
#define CLV_STAT_REDIRECT_ERR 12
#define CLV_STAT_NAT_EXHAUSTED 13 /* new NAT flows refused (no port, or clv_nat_new failed): dropped */
#define CLV_STAT_RECLASSIFIED 14  /* link slot reused or removed */
#define CLV_STAT_MIGRATED 15
#define CLV_STAT_RETURN 16        /* return packets matched to a flow */
#define CLV_STAT_ICMP_ERR_IN 17   /* ICMP errors about translated packets, handed to the client */
#define CLV_STAT_ICMP_ERR_OUT 18  /* clients' ICMP errors about translated flows, sent translated */
#define CLV_STAT_TOO_BIG 19       /* redirect mode: too big for the link; answered with ICMP, dropped */
#define CLV_STAT_FRAG_UNKNOWN 20  /* later fragments of no datagram seen (nor for the host): dropped */
#define CLV_STAT_UNPARSED_DROP 21 /* unparseable packets dropped by `unparsed: drop` */
#define CLV_STAT_PROMOTED 22      /* flows assured: moved to clv_flows */
#define CLV_STAT_PROMOTE_FULL 23  /* assured but clv_flows (or clv_nat) full: left in the LRU tables */
#define CLV_STAT_NAT_PORT_BUSY 24 /* NAT claims refused: every port tried is a live flow's */
#define CLV_STAT_ENDED 25         /* flows deleted by the program (link slot reused, NAT refused) */
#define CLV_STAT_WRONG_LAN 26     /* packets of a flow arriving on another LAN interface: not steered */
#define CLV_STAT_ENDED_UNREPLIED                                                                             \
	27                   /* of CLV_STAT_ENDED, flows of the unreplied table (for                         \
	                      * clovisd's count of LRU evictions) */
#define CLV_STAT_LEFT 28     /* flows moved off a link their policy leaves (clv_leave) */
#define CLV_STAT_LEFT_NAT 29 /* translated flows that left so (forced): restarted as new ones */
#define CLV_STAT_MAX 30      /* a pinned clv_stats of another size is replaced (counters restart) */

#define CLV_NAT_PORT_MIN 32768
#define CLV_NAT_PORT_RANGE 28232 /* 32768-60999, as ip_local_port_range */
#define CLV_NAT_TRIES 8

#ifdef __cplusplus
static_assert(sizeof(struct clv_tuple) == 48, "clv_tuple layout");
static_assert(sizeof(struct clv_rule_key) == 48, "clv_rule_key layout");
static_assert(sizeof(struct clv_rule_val) == 12, "clv_rule_val layout");
static_assert(sizeof(struct clv_shape) == 52, "clv_shape layout");
static_assert(sizeof(struct clv_bank_meta) == 24, "clv_bank_meta layout");
static_assert(sizeof(struct clv_member) == 4, "clv_member layout");
static_assert(sizeof(struct clv_policy) == 72, "clv_policy layout");
static_assert(sizeof(struct clv_link) == 68, "clv_link layout");
static_assert(sizeof(struct clv_link_state) == 32, "clv_link_state layout");
static_assert(sizeof(struct clv_leave) == 48, "clv_leave layout");
static_assert(sizeof(struct clv_flow_key) == 40, "clv_flow_key layout");
static_assert(sizeof(struct clv_flow) == 96, "clv_flow layout");
static_assert(sizeof(struct clv_nat_key) == 40, "clv_nat_key layout");
static_assert(sizeof(struct clv_link_stats) == 64, "clv_link_stats layout");
static_assert(CLV_LINK_DROP_ENTRIES == 512 && CLV_LINK_DROP_REASONS <= CLV_LINK_DROP_MAX,
              "clv_link_drops layout");
static_assert(CLV_MIGRATION_ENTRIES == 4096, "clv_migrations layout");
#else
_Static_assert(sizeof(struct clv_tuple) == 48, "clv_tuple layout");
_Static_assert(sizeof(struct clv_rule_key) == 48, "clv_rule_key layout");
_Static_assert(sizeof(struct clv_rule_val) == 12, "clv_rule_val layout");
_Static_assert(sizeof(struct clv_shape) == 52, "clv_shape layout");
_Static_assert(sizeof(struct clv_bank_meta) == 24, "clv_bank_meta layout");
_Static_assert(sizeof(struct clv_member) == 4, "clv_member layout");
_Static_assert(sizeof(struct clv_policy) == 72, "clv_policy layout");
_Static_assert(sizeof(struct clv_link) == 68, "clv_link layout");
_Static_assert(sizeof(struct clv_link_state) == 32, "clv_link_state layout");
_Static_assert(sizeof(struct clv_leave) == 48, "clv_leave layout");
_Static_assert(sizeof(struct clv_flow_key) == 40, "clv_flow_key layout");
_Static_assert(sizeof(struct clv_flow) == 96, "clv_flow layout");
_Static_assert(sizeof(struct clv_nat_key) == 40, "clv_nat_key layout");
_Static_assert(sizeof(struct clv_link_stats) == 64, "clv_link_stats layout");
_Static_assert(CLV_LINK_DROP_ENTRIES == 512 && CLV_LINK_DROP_REASONS <= CLV_LINK_DROP_MAX,
               "clv_link_drops layout");
_Static_assert(CLV_MIGRATION_ENTRIES == 4096, "clv_migrations layout");
#endif

/*
 * Shared decision logic. These functions are compiled into both the BPF
 * program and the C++ core; keep them free of anything either side lacks.
 */

/* Mask a tuple with a shape. Returns 0 when the shape is of another family. */
static inline int clv_mask_tuple(const struct clv_shape *s, const struct clv_tuple *t, __u8 bank,
                                 __u8 shape_idx, struct clv_rule_key *k)
{
	int i;

	if (s->family != t->family)
		return 0;
	k->bank = bank;
	k->shape = shape_idx;
	k->proto = t->proto & s->proto_mask;
	k->dscp = t->dscp & s->dscp_mask;
	k->sport = t->sport & s->sport_mask;
	k->dport = t->dport & s->dport_mask;
	k->mark = t->mark & s->mark_mask;
	k->iif_id = s->iif_on ? t->iif_id : 0;
	for (i = 0; i < 4; i++) {
		k->src[i] = t->src[i] & s->src_mask[i];
		k->dst[i] = t->dst[i] & s->dst_mask[i];
	}
	return 1;
}

static inline __u32 clv_rotl32(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

/* One murmur3 block step: cheap, well mixed, identical in BPF and C++. */
static inline __u32 clv_hash_step(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51u;
	k = clv_rotl32(k, 15);
	k *= 0x1b873593u;
	h ^= k;
	h = clv_rotl32(h, 13);
	return h * 5 + 0xe6546b64u;
}

static inline __u32 clv_hash_final(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* The hash that spreads new flows over weighted members; which fields feed it
 * is the policy's stickiness. */
static inline __u32 clv_flow_hash(const struct clv_tuple *t, __u8 sticky)
{
	__u32 h = 0x636c7673u; /* "clvs" */
	int i;

	for (i = 0; i < 4; i++)
		h = clv_hash_step(h, t->src[i]);
	if (sticky != CLV_STICKY_SOURCE) {
		for (i = 0; i < 4; i++)
			h = clv_hash_step(h, t->dst[i]);
	}
	if (sticky == CLV_STICKY_FLOW)
		h = clv_hash_step(h, (t->sport * 0x10000u) | t->dport);
	if (sticky == CLV_STICKY_FLOW)
		h = clv_hash_step(h, t->proto);
	return clv_hash_final(h);
}

/* Usable link slots for a policy, a flow's family and the live link state. */
static inline __u64 clv_usable_links(const struct clv_policy *p, const struct clv_link_state *st, __u8 family)
{
	__u64 usable = st->up & (family == CLV_AF_INET6 ? st->v6 : st->v4);

	if (p->flags & CLV_POL_AVOID_DEGRADED) {
		/* Degraded links are avoided only while a healthy one exists. */
		__u64 healthy = usable & ~st->degraded;
		int i;

		for (i = 0; i < CLV_POLICY_MAX_MEMBERS; i++) {
			if (i >= p->n_members)
				break;
			if (p->members[i].weight && ((healthy >> (p->members[i].link & 63)) & 1)) {
				usable = healthy;
				break;
			}
		}
	}
	return usable;
}

/* Pick a member: the lowest tier that has a usable link with weight > 0, then
 * weighted by hash within that tier. Returns the member index or -1. */
static inline int clv_pick_member(const struct clv_policy *p, __u64 usable, __u32 hash)
{
	__u32 best_tier = 0x100, total = 0, pick;
	int i;

	for (i = 0; i < CLV_POLICY_MAX_MEMBERS; i++) {
		const struct clv_member *m = &p->members[i];

		if (i >= p->n_members)
			break;
		if (!((usable >> (m->link & 63)) & 1) || m->weight == 0)
			continue;
		if (m->tier < best_tier) {
			best_tier = m->tier;
			total = m->weight;
		} else if (m->tier == best_tier) {
			total += m->weight;
		}
	}
	if (total == 0)
		return -1;
	pick = hash % total;
	for (i = 0; i < CLV_POLICY_MAX_MEMBERS; i++) {
		const struct clv_member *m = &p->members[i];

		if (i >= p->n_members)
			break;
		if (!((usable >> (m->link & 63)) & 1) || m->weight == 0 || m->tier != best_tier)
			continue;
		if (pick < m->weight)
			return i;
		pick -= m->weight;
	}
	return -1;
}

/* Connection tracking: the state after a packet of a flow. `in`: the packet
 * came from the remote (a reply). Shared by the program and by the unit tests
 * that hold it to conntrack's transitions. */
static inline __u8 clv_ct_next(__u8 state, __u8 *ct_flags, __u8 proto, __u8 tcp_flags, int in)
{
	if (proto != 6 /* IPPROTO_TCP */) {
		if (in && state == CLV_CT_NEW) {
			*ct_flags |= CLV_CT_ASSURED;
			return CLV_CT_ESTABLISHED;
		}
		return state;
	}
	if (tcp_flags & CLV_TCP_RST)
		return CLV_CT_CLOSE;
	if (tcp_flags & CLV_TCP_SYN) {
		if (!in && !(tcp_flags & CLV_TCP_ACK) &&
		    (state == CLV_CT_TIME_WAIT || state == CLV_CT_CLOSE)) {
			/* The port used again for a new connection, as conntrack allows. */
			*ct_flags &= CLV_CT_ASSURED; /* the FINs of the old connection go */
			return CLV_CT_NEW;
		}
		if (in && (tcp_flags & CLV_TCP_ACK) && state == CLV_CT_NEW)
			return CLV_CT_SYN_RECV;
		return state;
	}
	if (tcp_flags & CLV_TCP_FIN) {
		*ct_flags |= in ? CLV_CT_FIN_IN : CLV_CT_FIN_OUT;
		if ((*ct_flags & (CLV_CT_FIN_OUT | CLV_CT_FIN_IN)) == (CLV_CT_FIN_OUT | CLV_CT_FIN_IN))
			return CLV_CT_TIME_WAIT;
		if (state == CLV_CT_CLOSE)
			return state;
		return CLV_CT_FIN_WAIT;
	}
	/* Handshake completed by the client's ACK, or a connection picked up
	 * mid-stream (no SYN seen: a restart, an upgrade) once the remote answers. */
	if ((state == CLV_CT_SYN_RECV && !in) || (state == CLV_CT_NEW && in)) {
		*ct_flags |= CLV_CT_ASSURED;
		return CLV_CT_ESTABLISHED;
	}
	return state;
}

#endif /* CLOVIS_ABI_H */
