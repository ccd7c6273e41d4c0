/* xdpgen: packet source and sink of the isolated-edge workload of the peer
 * benchmarks (bench/peers/run.py, workload udp_pps_edge). No pktgen in this kernel, so it uses
 * BPF_PROG_RUN's live-frame mode (BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18+): a
 * ~30-instruction XDP program runs on a prebuilt 64-byte-payload UDP frame, picks
 * one of NFLOWS source ports, and returns XDP_PASS, which makes the kernel
 * inject the frame into the stack as if it had arrived on IFNAME (the edge's LAN
 * interface): skb built, netif_receive_skb_list, TC ingress, IP. No socket, no
 * syscall per packet, no veth hop before the edge: the generator costs little
 * next to the edge's own receive + forward path. `drop` returns XDP_DROP
 * instead, which measures the generator alone.
 *
 *   xdpgen gen IFNAME SRC_IP DST_IP DPORT NFLOWS SECONDS [BATCH [pass|drop]]
 *   xdpgen sink IFNAME
 *
 * gen runs on whatever CPU it was started on (pin it with taskset): the whole
 * forwarding path then runs in its context. Prints one JSON line: frames run,
 * wall seconds, and this thread's CPU seconds (which, without
 * CONFIG_IRQ_TIME_ACCOUNTING, include the softirq work done in its context).
 *
 * sink attaches a TCX ingress program to IFNAME (the WAN router's side of an
 * edge WAN link) that drops and counts every IPv4 packet (ARP passes, so the
 * edge's neighbour entries stay valid): the router's forwarding and the cloud
 * are out of the measurement. It prints "ready", then one JSON line
 * {"dropped": N} for every line read on stdin, and detaches at EOF.
 *
 * Needs CAP_BPF + CAP_NET_ADMIN (root). Built by run.py with `cc -O2`. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef BPF_F_TEST_XDP_LIVE_FRAMES
#define BPF_F_TEST_XDP_LIVE_FRAMES (1U << 1)
#endif
/* Newer than the UAPI headers of Debian 12 (6.1); stable kernel ABI. */
enum { kTcxIngress = 46 /* BPF_TCX_INGRESS */, kTcActShot = 2, kTcxNext = -1 };

enum {
  kPayload = 64,
  kFrame = 14 + 20 + 8 + kPayload,
  kBasePort = 20000,
  kChunk = 1 << 14, /* frames in the first BPF_PROG_RUN call */
  kBatch = 64,      /* frames per NAPI-like batch (the kernel's default) */
};

static double now(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char* what) {
  perror(what);
  exit(1);
}

static long sys_bpf(int cmd, union bpf_attr* attr) {
  return syscall(__NR_bpf, cmd, attr, sizeof *attr);
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

static int load(int type, struct bpf_insn* insns, int n, const char* name) {
  static char log[4096];
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = type;
  a.insns = (uintptr_t)insns;
  a.insn_cnt = n;
  a.license = (uintptr_t) "Dual BSD/GPL";
  a.log_buf = (uintptr_t)log;
  a.log_size = sizeof log;
  a.log_level = 1;
  snprintf(a.prog_name, sizeof a.prog_name, "%s", name);
  int fd = sys_bpf(BPF_PROG_LOAD, &a);
  if (fd < 0) {
    fprintf(stderr, "BPF_PROG_LOAD %s: %s\n%s\n", name, strerror(errno), log);
    exit(1);
  }
  return fd;
}

/* Live frames are recycled with whatever the stack left in them (forwarding
 * rewrites the MACs, the TTL and the checksum in place), so the program writes
 * the whole 42-byte header from `hdr` on every run, then sets
 * sport = base + prandom % nflows. Returns `verdict`. */
static int load_gen(const uint8_t* hdr, int nflows, int verdict) {
  enum { kHdr = 14 + 20 + 8 };
  struct bpf_insn insns[64];
  int n = 0;
#define EMIT(c, d, s, o, i) insns[n++] = INSN(c, d, s, o, i)
  EMIT(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0);               /* r6 = ctx */
  EMIT(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_prandom_u32); /* r0 = prandom */
  EMIT(BPF_ALU | BPF_MOD | BPF_K, 0, 0, 0, nflows);            /* w0 %= nflows */
  EMIT(BPF_ALU | BPF_ADD | BPF_K, 0, 0, 0, kBasePort);         /* w0 += base */
  EMIT(BPF_ALU | BPF_END | BPF_TO_BE, 0, 0, 0, 16);            /* r0 = htons(r0) */
  EMIT(BPF_LDX | BPF_MEM | BPF_W, 2, 6, 0, 0);                 /* r2 = ctx->data */
  EMIT(BPF_LDX | BPF_MEM | BPF_W, 3, 6, 4, 0);                 /* r3 = ctx->data_end */
  EMIT(BPF_ALU64 | BPF_MOV | BPF_X, 4, 2, 0, 0);               /* r4 = r2 */
  EMIT(BPF_ALU64 | BPF_ADD | BPF_K, 4, 0, 0, kHdr);            /* r4 += header length */
  int jump = n;
  EMIT(BPF_JMP | BPF_JGT | BPF_X, 4, 3, 0 /* below */, 0); /* if r4 > r3: no header */
  for (int off = 0; off + 8 <= kHdr; off += 8) {           /* *(u64 *)(r2 + off) = hdr[off] */
    uint64_t w;
    memcpy(&w, hdr + off, 8);
    EMIT(BPF_LD | BPF_DW | BPF_IMM, 1, 0, 0, (int32_t)(uint32_t)w);
    EMIT(0, 0, 0, 0, (int32_t)(uint32_t)(w >> 32));
    EMIT(BPF_STX | BPF_MEM | BPF_DW, 2, 1, off, 0);
  }
  uint16_t tail;
  memcpy(&tail, hdr + kHdr - 2, 2);
  EMIT(BPF_ST | BPF_MEM | BPF_H, 2, 0, kHdr - 2, tail); /* the last 2 bytes (UDP checksum) */
  EMIT(BPF_STX | BPF_MEM | BPF_H, 2, 0, 34, 0);         /* *(u16 *)(r2 + 34) = r0 (sport) */
  insns[jump].off = n - jump - 1;
  EMIT(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, verdict); /* r0 = verdict */
  EMIT(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
#undef EMIT
  return load(BPF_PROG_TYPE_XDP, insns, n, "clv_xdpgen");
}

/* IPv4: count in a per-CPU array (key 0) and drop; anything else: next/pass. */
static int load_sink(int map_fd) {
  struct bpf_insn insns[] = {
      INSN(BPF_LDX | BPF_MEM | BPF_W, 2, 1, offsetof(struct __sk_buff, protocol), 0),
      INSN(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 12, htons(0x0800)), /* not IPv4: to "next" */
      INSN(BPF_ST | BPF_MEM | BPF_W, 10, 0, -4, 0),             /* key = 0 on the stack */
      INSN(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, map_fd),
      INSN(0, 0, 0, 0, 0),
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
      INSN(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4),
      INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
      INSN(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3, 0), /* no value: drop uncounted */
      INSN(BPF_LDX | BPF_MEM | BPF_DW, 1, 0, 0, 0),
      INSN(BPF_ALU64 | BPF_ADD | BPF_K, 1, 0, 0, 1),
      INSN(BPF_STX | BPF_MEM | BPF_DW, 0, 1, 0, 0),
      INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, kTcActShot),
      INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
      INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, kTcxNext),
      INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  return load(BPF_PROG_TYPE_SCHED_CLS, insns, sizeof insns / sizeof insns[0], "clv_sink");
}

static uint16_t csum16(const void* p, int len) {
  const uint8_t* b = p;
  uint32_t s = 0;
  for (int i = 0; i + 1 < len; i += 2) s += (b[i] << 8) | b[i + 1];
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return htons(~s & 0xffff);
}

/* Ethernet to IFNAME's own MAC, IPv4 (no options, TTL 64, valid header checksum),
 * UDP with checksum 0 (legal in IPv4), so the port rewrite needs no fix-up. */
static void build_frame(uint8_t* f, const char* ifname, const char* src, const char* dst, int dport) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
  if (s < 0 || ioctl(s, SIOCGIFHWADDR, &ifr) < 0) die("SIOCGIFHWADDR");
  close(s);
  memset(f, 0, kFrame);
  memcpy(f, ifr.ifr_hwaddr.sa_data, 6);
  memcpy(f + 6, "\x02\x00\x00\x00\x00\x01", 6); /* locally administered source */
  f[12] = 0x08;                                 /* ETH_P_IP */
  uint8_t* ip = f + 14;
  ip[0] = 0x45;
  ip[2] = (20 + 8 + kPayload) >> 8;
  ip[3] = (20 + 8 + kPayload) & 0xff;
  ip[6] = 0x40; /* DF */
  ip[8] = 64;
  ip[9] = IPPROTO_UDP;
  if (inet_pton(AF_INET, src, ip + 12) != 1 || inet_pton(AF_INET, dst, ip + 16) != 1) {
    fprintf(stderr, "bad address\n");
    exit(2);
  }
  uint16_t c = csum16(ip, 20);
  memcpy(ip + 10, &c, 2);
  uint8_t* udp = ip + 20;
  udp[0] = kBasePort >> 8;
  udp[1] = kBasePort & 0xff;
  udp[2] = dport >> 8;
  udp[3] = dport & 0xff;
  udp[5] = 8 + kPayload;
}

static long sink_count(int map_fd) {
  long ncpu = sysconf(_SC_NPROCESSORS_CONF), total = 0;
  uint64_t* v = calloc(ncpu, sizeof *v);
  uint32_t key = 0;
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = map_fd;
  a.key = (uintptr_t)&key;
  a.value = (uintptr_t)v;
  if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &a) < 0) die("BPF_MAP_LOOKUP_ELEM");
  for (long i = 0; i < ncpu; i++) total += v[i];
  free(v);
  return total;
}

static int do_sink(const char* ifname) {
  unsigned ifindex = if_nametoindex(ifname);
  if (!ifindex) die(ifname);
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = BPF_MAP_TYPE_PERCPU_ARRAY;
  a.key_size = 4;
  a.value_size = 8;
  a.max_entries = 1;
  snprintf(a.map_name, sizeof a.map_name, "clv_sink_cnt");
  int map = sys_bpf(BPF_MAP_CREATE, &a);
  if (map < 0) die("BPF_MAP_CREATE");
  int prog = load_sink(map);
  memset(&a, 0, sizeof a);
  a.link_create.prog_fd = prog;
  a.link_create.target_ifindex = ifindex;
  a.link_create.attach_type = kTcxIngress;
  int link = sys_bpf(BPF_LINK_CREATE, &a); /* detached when this process exits */
  if (link < 0) die("BPF_LINK_CREATE (tcx ingress)");
  printf("ready\n");
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    printf("{\"dropped\": %ld}\n", sink_count(map));
    fflush(stdout);
  }
  close(link);
  return 0;
}

static int do_gen(int argc, char** argv) {
  const char* ifname = argv[0];
  int nflows = atoi(argv[4]);
  double secs = atof(argv[5]);
  int batch = argc > 6 ? atoi(argv[6]) : kBatch;
  int verdict = argc > 7 && !strcmp(argv[7], "drop") ? XDP_DROP : XDP_PASS;
  unsigned ifindex = if_nametoindex(ifname);
  if (!ifindex) die(ifname);
  if (nflows < 1) nflows = 1;

  static uint8_t frame[kFrame];
  build_frame(frame, ifname, argv[1], argv[2], atoi(argv[3]));
  int prog = load_gen(frame, nflows, verdict);

  struct xdp_md ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.data_end = kFrame;
  ctx.ingress_ifindex = ifindex;
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.test.prog_fd = prog;
  a.test.data_in = (uintptr_t)frame;
  a.test.data_size_in = kFrame;
  a.test.ctx_in = (uintptr_t)&ctx;
  a.test.ctx_size_in = sizeof ctx;
  a.test.repeat = kChunk;
  a.test.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
  a.test.batch_size = batch;

  /* Each call sets up and tears down a page pool, and the teardown sleeps (an
   * RCU grace period, ~20 ms here): the first call is small, later ones are
   * sized from the CPU rate seen so far to take ~1/4 of the time left, so the
   * sleeps stay a small part of the wall time. */
  long frames = 0, calls = 0;
  double c0 = now(CLOCK_THREAD_CPUTIME_ID), t0 = now(CLOCK_MONOTONIC), end = t0 + secs, t = t0;
  while (t < end) {
    union bpf_attr run = a;
    if (frames) {
      double rate = frames / (now(CLOCK_THREAD_CPUTIME_ID) - c0 + 1e-9), want = rate * (end - t) / 4;
      run.test.repeat = want < kChunk ? kChunk : want > 1e9 ? 1e9 : (unsigned)want;
    }
    if (sys_bpf(BPF_PROG_TEST_RUN, &run) < 0) {
      if (errno == EINTR) continue;
      die("BPF_PROG_RUN (live frames)");
    }
    frames += run.test.repeat;
    calls++;
    t = now(CLOCK_MONOTONIC);
  }
  double cpu = now(CLOCK_THREAD_CPUTIME_ID) - c0;
  printf("{\"frames\": %ld, \"calls\": %ld, \"seconds\": %.6f, \"cpu_seconds\": %.6f, \"cpu\": %d}\n", frames, calls,
         t - t0, cpu, sched_getcpu());
  close(prog);
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 8 && !strcmp(argv[1], "gen")) return do_gen(argc - 2, argv + 2);
  if (argc >= 3 && !strcmp(argv[1], "sink")) return do_sink(argv[2]);
  fprintf(stderr,
          "usage: xdpgen gen IFNAME SRC_IP DST_IP DPORT NFLOWS SECONDS [BATCH [pass|drop]]\n"
          "       xdpgen sink IFNAME\n");
  return 2;
}
