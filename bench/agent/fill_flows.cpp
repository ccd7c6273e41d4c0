// fill_flows: writes N synthetic IPv4 flows straight into clovisd's pinned
// flow table (PIN_DIR/maps/clv_flows), for bench/agent/bench_agent.py.
//
//   fill_flows PIN_DIR N LINK_SLOT LINK_EPOCH GENERATION [FIRST_INDEX]
//
// Flow i: 10.(i>>16 & 0xff).(i>>8 & 0xff).(i & 0xff):(1024 + i>>24) ->
// 203.0.113.10:443/tcp, action STEER on LINK_SLOT, rule_id 0, first/last
// = CLOCK_MONOTONIC_COARSE now (so the 10 s idle sweep keeps them).
// Build: c++ -O2 -std=c++20 fill_flows.cpp -lbpf -I<repo>/bpf/include
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <time.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "clovis/abi.h"

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s PIN_DIR N LINK_SLOT LINK_EPOCH GENERATION [FIRST_INDEX]\n", argv[0]);
    return 2;
  }
  const std::string path = std::string(argv[1]) + "/maps/clv_flows";
  const uint64_t n = std::strtoull(argv[2], nullptr, 0);
  const auto slot = static_cast<uint8_t>(std::strtoul(argv[3], nullptr, 0));
  const auto epoch = static_cast<uint32_t>(std::strtoul(argv[4], nullptr, 0));
  const auto gen = static_cast<uint32_t>(std::strtoul(argv[5], nullptr, 0));
  const uint64_t first = argc > 6 ? std::strtoull(argv[6], nullptr, 0) : 0;
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    std::fprintf(stderr, "bpf_obj_get %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  const uint64_t now = uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
  constexpr uint32_t kBatch = 8192;
  std::vector<clv_flow_key> keys(kBatch);
  std::vector<clv_flow> vals(kBatch);
  uint64_t done = 0;
  while (done < n) {
    const uint32_t cnt = static_cast<uint32_t>(std::min<uint64_t>(kBatch, n - done));
    for (uint32_t j = 0; j < cnt; ++j) {
      const uint64_t i = first + done + j;
      clv_flow_key& k = keys[j];
      std::memset(&k, 0, sizeof k);
      k.src[0] = htonl((10u << 24) | uint32_t(i & 0xffffff));
      k.dst[0] = htonl((203u << 24) | (0u << 16) | (113u << 8) | 10u);
      k.sport = static_cast<uint16_t>(1024 + (i >> 24));
      k.dport = 443;
      k.proto = 6;
      k.family = CLV_AF_INET;
      clv_flow& f = vals[j];
      std::memset(&f, 0, sizeof f);
      f.first_ns = now;
      f.last_ns = now;
      f.pkts_out = 10 + (i % 1000);
      f.bytes_out = f.pkts_out * 800;
      f.pkts_in = 8 + (i % 700);
      f.bytes_in = f.pkts_in * 1200;
      f.rule_id = 0;
      f.generation = gen;
      f.link_epoch = epoch;
      f.lan_ifindex = 0;
      f.link = slot;
      f.action = CLV_ACT_STEER;
      f.mode = CLV_MODE_ROUTE;
    }
    uint32_t c = cnt;
    LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = 0, .flags = BPF_ANY);
    if (bpf_map_update_batch(fd, keys.data(), vals.data(), &c, &opts) != 0) {
      std::fprintf(stderr, "bpf_map_update_batch at %llu: %s (%u written)\n", (unsigned long long)(first + done),
                   std::strerror(errno), c);
      return 1;
    }
    done += cnt;
  }
  std::printf("%llu\n", (unsigned long long)done);
  return 0;
}
