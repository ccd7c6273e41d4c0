/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Source NAT for redirect mode: claiming a port for a new translated flow
 * (nat_claim, tried in bpf_loop by claim_try) and setup_nat, which a flow
 * just pinned to a link runs when the link asks for it. Private to
 * clovis.bpf.c: it uses its maps, stat() and find_flow().
 */
#ifndef CLOVIS_BPF_NAT_H
#define CLOVIS_BPF_NAT_H

struct claim_ctx {
	struct clv_nat_key nk;
	struct clv_flow_key *fk;
	__u32 hash;
	__u32 tried; /* ports tried */
	__u32 busy;  /* tries that found the port a live flow's */
	__u8 has_ports;
	__u8 claimed;
};

/* One try of nat_claim(): port `i` of the sequence. Returns 1 to stop. */
static long claim_try(__u32 i, void *data)
{
	struct claim_ctx *c = data;
	struct clv_flow_key *owner;
	struct clv_flow *of;
	int in_new;

	if (!c->has_ports && i > 0)
		return 1; /* ICMP: the echo id stays */
	c->nk.local_port =
	        i == 0 ? c->fk->sport : CLV_NAT_PORT_MIN + (c->hash + i * 7919u) % CLV_NAT_PORT_RANGE;
	c->tried++;
	if (bpf_map_lookup_elem(&clv_nat, &c->nk)) {
		/* An assured connection's: never taken. */
		c->busy++;
		return 0;
	}
	if (bpf_map_update_elem(&clv_nat_new, &c->nk, c->fk, BPF_NOEXIST) == 0)
		goto claimed;
	owner = bpf_map_lookup_elem(&clv_nat_new, &c->nk);
	if (!owner)
		return 0;
	if (flow_key_eq(owner, c->fk))
		goto claimed; /* ours already (its flow entry was evicted) */
	of = find_flow(owner, &in_new);
	if (of && (of->flags & CLV_FLOW_NAT) && of->nat_port == c->nk.local_port) {
		c->busy++;
		return 0; /* a live flow's */
	}
	if (bpf_map_update_elem(&clv_nat_new, &c->nk, c->fk, BPF_ANY) == 0)
		goto claimed;
	return 0;
claimed:
	c->claimed = 1;
	return 1;
}

/* Claims a NAT port for a new translated flow: the client's own port when
 * free, else one of CLV_NAT_TRIES hashed ones. A port bound to an assured
 * flow, or to a live unreplied one, is never taken; a binding whose flow is
 * gone (evicted from the LRU table) is. The claim goes into the unreplied
 * table. The tries run in bpf_loop: verified once, not once per try. */
static __always_inline int nat_claim(struct pkt *p, struct clv_flow *f, const __be32 *addr)
{
	struct claim_ctx c = {};

	c.fk = &p->fk;
	c.hash = clv_flow_hash(&p->t, CLV_STICKY_FLOW);
	c.has_ports = p->has_ports;
	__builtin_memcpy(c.nk.remote, p->fk.dst, 16);
	if (p->t.family == CLV_AF_INET)
		c.nk.local[0] = addr[0];
	else
		__builtin_memcpy(c.nk.local, addr, 16);
	c.nk.remote_port = p->fk.dport;
	c.nk.proto = p->fk.proto;
	c.nk.family = p->fk.family;
	/* Counted by the tries themselves, not bpf_loop's return: an ICMP
	 * echo's single try ends the loop on its second round, which bpf_loop
	 * counts too, and an id a live flow holds read as "exhausted". */
	bpf_loop(CLV_NAT_TRIES, claim_try, &c, 0);
	if (!c.claimed) {
		stat(c.tried > 0 && c.busy == c.tried ? CLV_STAT_NAT_PORT_BUSY : CLV_STAT_NAT_EXHAUSTED);
		return -1;
	}
	__builtin_memcpy(f->nat_addr, c.nk.local, 16);
	f->nat_port = c.nk.local_port;
	f->flags |= CLV_FLOW_NAT;
	return 0;
}

/* Source NAT for a flow just pinned to a link that asks for it. On failure
 * (no port free) the packet is dropped and no flow recorded, as Linux's NAT
 * drops it: never sent untranslated, and the next packet tries again. */
__noinline int setup_nat(struct pkt *p, struct clv_flow *f)
{
	__u32 slot;
	struct clv_link *l;

	if (!p || !f)
		return -1;
	/* A global BPF function: verified once, and its claim's stack is not
	 * added to its callers' frames. */
	slot = f->link & (CLV_MAX_LINKS - 1);
	l = bpf_map_lookup_elem(&clv_links, &slot);

	if (!l || l->mode != CLV_MODE_REDIRECT || l->snat == CLV_SNAT_NONE)
		return 0;
	return nat_claim(p, f, p->t.family == CLV_AF_INET ? &l->snat4 : l->snat6);
}

#endif /* CLOVIS_BPF_NAT_H */
