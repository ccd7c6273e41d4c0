/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking and the flow tables (clovis/abi.h): lookups across
 * the assured pair (clv_flows, clv_nat) and the unreplied one (clv_flows_new,
 * clv_nat_new), a flow's state after each packet, promotion of an assured
 * flow into the tables new flows cannot evict, and a flow's end. Private to
 * clovis.bpf.c: it uses its maps, stat() and struct pkt (parse.h).
 */
#ifndef CLOVIS_BPF_CONNTRACK_H
#define CLOVIS_BPF_CONNTRACK_H

/* promote()'s snapshot of the flow it moves. No program runs nested in
 * another on one CPU (TC runs with bottom halves off). Not pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct clv_flow);
	__uint(max_entries, 1);
} clv_promote_tmp SEC(".maps");

static __always_inline int flow_key_eq(const struct clv_flow_key *a, const struct clv_flow_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;
	__u32 diff = 0;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(*a) / 4); i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

/* A flow by its LAN-side key: assured ones first (most packets are theirs). */
static __always_inline struct clv_flow *find_flow(const struct clv_flow_key *k, int *in_new)
{
	struct clv_flow *f = bpf_map_lookup_elem(&clv_flows, k);

	*in_new = 0;
	if (f)
		return f;
	*in_new = 1;
	return bpf_map_lookup_elem(&clv_flows_new, k);
}

static __always_inline struct clv_flow_key *find_nat(const struct clv_nat_key *nk)
{
	struct clv_flow_key *owner = bpf_map_lookup_elem(&clv_nat, nk);

	return owner ? owner : bpf_map_lookup_elem(&clv_nat_new, nk);
}

/* The return direction's NAT key of a translated flow. */
static __always_inline void nat_key_of(const struct clv_flow_key *k, const struct clv_flow *f,
                                       struct clv_nat_key *nk)
{
	__builtin_memcpy(nk->remote, k->dst, 16);
	__builtin_memcpy(nk->local, f->nat_addr, 16);
	nk->remote_port = k->dport;
	nk->local_port = f->nat_port;
	nk->proto = k->proto;
	nk->family = k->family;
	nk->pad = 0;
}

/* An unreplied flow just assured: into the tables new flows cannot evict,
 * with its NAT binding. When they are full it stays where it is (counted).
 * Returns the flow's entry from now on. A BPF subprogram: only a flow's
 * first reply or handshake ACK comes here. */
static __noinline struct clv_flow *promote(const struct clv_flow_key *k, struct clv_flow *f)
{
	struct clv_nat_key nk = {};
	struct clv_flow *v, *nf;
	__u32 zero = 0;
	long rc;
	int nat = f->flags & CLV_FLOW_NAT;

	/* The copy is made from a snapshot, so that what other CPUs add to
	 * the old entry meanwhile can be carried over below. */
	v = bpf_map_lookup_elem(&clv_promote_tmp, &zero);
	if (!v)
		return f;
	__builtin_memcpy(v, f, sizeof(*v));
	if (nat) {
		nat_key_of(k, f, &nk);
		rc = bpf_map_update_elem(&clv_nat, &nk, k, BPF_NOEXIST);
		if (rc && rc != -EEXIST) {
			stat(CLV_STAT_PROMOTE_FULL);
			return f;
		}
	}
	rc = bpf_map_update_elem(&clv_flows, k, v, BPF_NOEXIST);
	if (rc && rc != -EEXIST) {
		if (nat)
			bpf_map_delete_elem(&clv_nat, &nk);
		stat(CLV_STAT_PROMOTE_FULL);
		return f;
	}
	nf = bpf_map_lookup_elem(&clv_flows, k);
	if (!rc && nf) {
		/* Packets other CPUs counted on the old entry since the
		 * snapshot (they found it before the new one existed). Only a
		 * count added between these reads and the delete is lost. */
		__sync_fetch_and_add(&nf->pkts_out, f->pkts_out - v->pkts_out);
		__sync_fetch_and_add(&nf->bytes_out, f->bytes_out - v->bytes_out);
		__sync_fetch_and_add(&nf->pkts_in, f->pkts_in - v->pkts_in);
		__sync_fetch_and_add(&nf->bytes_in, f->bytes_in - v->bytes_in);
	}
	/* (-EEXIST: another CPU promoted it first.) */
	bpf_map_delete_elem(&clv_flows_new, k);
	if (nat)
		bpf_map_delete_elem(&clv_nat_new, &nk);
	if (!rc)
		stat(CLV_STAT_PROMOTED);
	return nf;
}

/* The connection state after a packet of the flow (`in`: from the remote).
 * Returns 1 when the flow is assured. A BPF subprogram: its branches are
 * verified once, not multiplied into every path of the caller's. */
static __noinline int ct_update(struct clv_flow *f, __u8 proto, __u8 tcp_flags, int in)
{
	__u8 flags;

	if (!f)
		return 0;
	flags = f->ct_flags;
	f->state = clv_ct_next(f->state, &flags, proto, tcp_flags, in);
	f->ct_flags = flags;
	return (flags & CLV_CT_ASSURED) != 0;
}

/* A packet of a known flow, for its connection state. Returns the flow's
 * entry, which moves when it becomes assured. */
static __always_inline struct clv_flow *ct_track(const struct clv_flow_key *k, struct clv_flow *f, int in_new,
                                                 struct pkt *p, int in)
{
	if (ct_update(f, p->fk.proto, p->tcp_flags, in) && in_new)
		return promote(k, f);
	return f;
}

/* Whether a known flow's packet can change its connection state (`in`: from
 * the remote). Exactly clv_ct_next()'s cases: a TCP segment unless it is
 * plain data of an established connection; for anything else only the first
 * reply. The bulk of a connection's packets, and every outbound packet of an
 * unreplied UDP or ICMP flow, skip the call. */
static __always_inline int ct_needed(const struct clv_flow *f, const struct pkt *p, int in)
{
	if (p->fk.proto != IPPROTO_TCP)
		return in && f->state == CLV_CT_NEW;
	return f->state != CLV_CT_ESTABLISHED || (p->tcp_flags & (CLV_TCP_FIN | CLV_TCP_SYN | CLV_TCP_RST));
}

/* Ends a flow the program will not use again, with its NAT binding. */
static __always_inline void end_flow(const struct clv_flow_key *k, const struct clv_flow *f, int in_new)
{
	struct clv_nat_key nk = {};

	if (f->flags & CLV_FLOW_NAT)
		nat_key_of(k, f, &nk);
	if (in_new) {
		if (f->flags & CLV_FLOW_NAT)
			bpf_map_delete_elem(&clv_nat_new, &nk);
		bpf_map_delete_elem(&clv_flows_new, k);
		stat(CLV_STAT_ENDED);
		stat(CLV_STAT_ENDED_UNREPLIED);
		return;
	}
	if (f->flags & CLV_FLOW_NAT)
		bpf_map_delete_elem(&clv_nat, &nk);
	bpf_map_delete_elem(&clv_flows, k);
	stat(CLV_STAT_ENDED);
}

#endif /* CLOVIS_BPF_CONNTRACK_H */
