/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-link counters: traffic and flows (clv_lstats, on the paths that carry
 * them), and what only exceptional paths count: packets dropped after a link
 * was chosen, by reason (clv_link_drops), and flows failover moved from one
 * link to another (clv_migrations). Private to clovis.bpf.c: uses its maps.
 */
#ifndef CLOVIS_BPF_LINK_STATS_H
#define CLOVIS_BPF_LINK_STATS_H

static __always_inline void count_link(__u32 slot, __u32 pkts, __u32 bytes, int out)
{
	struct clv_link_stats *s;

	slot &= CLV_MAX_LINKS - 1;
	s = bpf_map_lookup_elem(&clv_lstats, &slot);
	if (!s)
		return;
	if (out) {
		s->tx_packets += pkts;
		s->tx_bytes += bytes;
	} else {
		s->rx_packets += pkts;
		s->rx_bytes += bytes;
	}
}

static __always_inline void link_event(__u32 slot, int migrated)
{
	struct clv_link_stats *s;

	slot &= CLV_MAX_LINKS - 1;
	s = bpf_map_lookup_elem(&clv_lstats, &slot);
	if (!s)
		return;
	if (migrated)
		s->migrated++;
	else
		s->new_flows++;
}

/* A packet of a flow pinned to `slot` dropped for `reason` (CLV_LINK_DROP_*).
 * Only drop paths call it: what it costs is never a forwarded packet's. */
static __always_inline void link_drop(__u32 slot, __u32 reason)
{
	struct clv_link_stats *s;
	__u32 idx;
	__u64 *v;

	slot &= CLV_MAX_LINKS - 1;
	idx = slot * CLV_LINK_DROP_MAX + (reason & (CLV_LINK_DROP_MAX - 1));
	v = bpf_map_lookup_elem(&clv_link_drops, &idx);
	if (v)
		*v += 1;
	s = bpf_map_lookup_elem(&clv_lstats, &slot);
	if (s)
		s->drops++;
}

/* A flow moved by failover from link slot `from` to `to`. */
static __always_inline void count_migration(__u32 from, __u32 to)
{
	__u32 idx = (from & (CLV_MAX_LINKS - 1)) * CLV_MAX_LINKS + (to & (CLV_MAX_LINKS - 1));
	__u64 *v = bpf_map_lookup_elem(&clv_migrations, &idx);

	if (v)
		*v += 1;
}

#endif /* CLOVIS_BPF_LINK_STATS_H */
