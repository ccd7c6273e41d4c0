// Data-path benchmark (root): the real clovis program in a private network
// namespace.
//   per packet  BPF_PROG_TEST_RUN: a new flow's classification (every packet a
//               new flow; kernel-measured ns per run) and a known flow's packet
//               (one packet, repeated), at 10..100k rules
//   apply       text -> compiled tables -> shadow bank -> flip, next to the
//               peers users compare with, in the same run: `nft -f` loading a
//               map of the same size and `iptables-restore` of N mark rules
// Speed is reported, never asserted. See docs/BENCHMARKS.md.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kernel_site.hpp"
#include "mapping_gen.hpp"
#include "packet.hpp"

using namespace clovis;

namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
  double min = 0, median = 0, max = 0;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v.front(), v[v.size() / 2], v.back()};
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Runs a shell command in the current (private) netns; returns its wall time,
// or -1 when it failed (a peer that cannot load the set is a result too).
double timed_sh(const std::string& cmd) {
  auto t0 = Clock::now();
  int rc = std::system((cmd + " 2>/dev/null").c_str());
  double ms = ms_since(t0);
  return rc == 0 ? ms : -1;
}

std::string ip4(uint32_t host_order) {
  return fmt::format("{}.{}.{}.{}", host_order >> 24, (host_order >> 16) & 255, (host_order >> 8) & 255,
                     host_order & 255);
}

// The peers' rule sets for the same generated rules: one nftables map
// (dst prefix . dport -> mark) and one iptables mangle rule per mapping rule.
void write_peers(const bench::Generated& g, const std::string& nft, const std::string& ipt) {
  std::ofstream n(nft), i(ipt);
  n << "flush ruleset\ntable ip clvbench {\n  map steer { type ipv4_addr . inet_service : mark; flags interval;\n"
       "    elements = {\n";
  i << "*mangle\n:PREROUTING ACCEPT [0:0]\n";
  bool first = true;
  for (const auto& r : g.rules) {
    if (r.dports.empty() || r.dst.plen == 0) continue;
    const auto& p = r.dports[0];
    std::string dst = fmt::format("{}/{}", ip4(r.dst.addr), r.dst.plen);
    n << (first ? "      " : ",\n      ") << dst << " . " << p.lo << "-" << p.hi << " : 0x" << std::hex
      << 0x100 * (r.target + 1) << std::dec;
    first = false;
    i << fmt::format("-A PREROUTING -d {} -p tcp --dport {}:{} -j MARK --set-mark 0x{:x}\n", dst, p.lo, p.hi,
                     0x100 * (r.target + 1));
  }
  n << "\n    }\n  }\n  chain pre { type filter hook prerouting priority mangle; meta mark set ip daddr . tcp dport "
       "map @steer; }\n}\n";
  i << "COMMIT\n";
}

struct PacketCost {
  Stats new_flow_ns, new_flow_miss_ns;
  double known_flow_ns = 0;
};

PacketCost per_packet(test::KernelSite& site, const bench::Generated& g, int flows, uint64_t seed) {
  bench::Rng rng(seed);
  std::vector<double> hit, miss;
  uint32_t dur = 0;
  for (int i = 0; i < flows; ++i) {
    if (i % 8192 == 0) site.clear_flows();  // stay far from LRU eviction
    // The last rule: worst case for a linear scan; one distinct source port per flow.
    clv_tuple t = bench::tuple_in(g.rules[(i % 2) ? g.rules.size() - 1 : rng.below(static_cast<uint32_t>(g.rules.size()))], rng);
    t.sport = static_cast<uint16_t>(1024 + i % 60000);
    test::PacketSpec p;
    p.tuple = t;
    site.run(test::build_packet(p), "lan0", 0, 1, &dur);
    hit.push_back(dur);
    clv_tuple m = bench::tuple_miss(rng);
    m.sport = static_cast<uint16_t>(1024 + i % 60000);
    p.tuple = m;
    site.run(test::build_packet(p), "lan0", 0, 1, &dur);
    miss.push_back(dur);
  }
  test::PacketSpec p;
  p.tuple = bench::tuple_in(g.rules.back(), rng);
  const auto pkt = test::build_packet(p);
  site.run(pkt, "lan0");  // make it a known flow
  site.run(pkt, "lan0", 0, 200000, &dur);
  return {stats(hit), stats(miss), static_cast<double>(dur)};
}

struct ApplyCost {
  Stats check_ms, kernel_ms, total_ms, nft_ms, ipt_ms;
  size_t entries = 0;
};

ApplyCost apply_cost(test::KernelSite& site, const bench::Generated& g, int runs) {
  ApplyCost c;
  std::vector<double> check, kernel, total, nft, ipt;
  const std::string nft_file = "/tmp/clovis-bench-" + std::to_string(getpid()) + ".nft";
  const std::string ipt_file = "/tmp/clovis-bench-" + std::to_string(getpid()) + ".ipt";
  write_peers(g, nft_file, ipt_file);
  for (int i = 0; i < runs; ++i) {
    auto t0 = Clock::now();
    auto checked = core::check_mapping(g.yaml);
    check.push_back(ms_since(t0));
    if (!checked.ok()) throw std::runtime_error("generated mapping rejected");
    auto t1 = Clock::now();
    const auto& rules = site.apply(g.yaml);
    total.push_back(check.back() + ms_since(t1) - 0.0);
    kernel.push_back(site.last_apply().write_ms);
    c.entries = rules.entries.size();
    nft.push_back(timed_sh("nft -f " + nft_file));
    ipt.push_back(timed_sh("iptables-restore < " + ipt_file));
  }
  // site.apply() checks again, so total = check + (check + kernel): report the
  // agent's real path, check + kernel, instead.
  for (size_t i = 0; i < total.size(); ++i) total[i] = check[i] + kernel[i];
  std::remove(nft_file.c_str());
  std::remove(ipt_file.c_str());
  std::system("nft flush ruleset; iptables -t mangle -F");
  c.check_ms = stats(check);
  c.kernel_ms = stats(kernel);
  c.total_ms = stats(total);
  c.nft_ms = stats(nft);
  c.ipt_ms = stats(ipt);
  return c;
}

std::string fmt_stats(const Stats& s, const char* unit) {
  return fmt::format("{:.0f}{} [{:.0f}-{:.0f}]", s.median, unit, s.min, s.max);
}

std::string fmt_ms(const Stats& s) {
  if (s.min < 0) return "failed";
  return fmt::format("{:.1f} [{:.1f}-{:.1f}]", s.median, s.min, s.max);
}

}  // namespace

int run(bool quick, bool route_only, const std::vector<size_t>& sizes, uint64_t seed);

int main(int argc, char** argv) {
  bool quick = false, route_only = false;
  std::vector<size_t> sizes = {10, 1000, 10000, 100000};
  uint64_t seed = 20261122;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") quick = true, sizes = {10, 1000};
    else if (a == "--seed" && i + 1 < argc) seed = std::stoull(argv[++i]);
    else if (a == "--route-only") route_only = true;
    else if (a == "--sizes" && i + 1 < argc) {
      sizes.clear();
      for (std::string v = argv[++i], x; !v.empty(); v = v.find(',') == std::string::npos ? "" : v.substr(v.find(',') + 1))
        sizes.push_back(std::stoul(v.substr(0, v.find(','))));
    }
    else {
      std::cerr << "usage: clovis-bench-datapath [--quick] [--route-only] [--sizes 10,1000,...] [--seed N]\n";
      return 2;
    }
  }
  if (!test::have_privileges()) {
    std::cerr << "clovis-bench-datapath: needs root (network namespace, BPF)\n";
    return 1;
  }
  try {
    return run(quick, route_only, sizes, seed);
  } catch (const std::exception& e) {  // reached after KernelSite's destructor unpinned its maps
    std::cerr << "clovis-bench-datapath: " << e.what() << "\n";
    return 1;
  }
}

int run(bool quick, bool route_only, const std::vector<size_t>& sizes, uint64_t seed) {
  test::KernelSite site;
  if (!site.ok()) {
    std::cerr << "clovis-bench-datapath: " << site.error() << "\n";
    return 1;
  }
  const int flows = quick ? 2000 : 20000, runs = quick ? 3 : 7;
  std::cout << fmt::format("seed {}, {} new flows per size, {} apply runs, links: {}; median [min-max]\n\n", seed,
                           flows, runs, route_only ? "all route mode" : "route + redirect with NAT");
  std::cout << fmt::format("{:>7} | {:>16} {:>16} {:>9} | {:>18} {:>18} {:>18} | {:>18} {:>18}\n", "rules",
                           "new flow (hit)", "new flow (miss)", "known", "check ms", "kernel write ms",
                           "apply total ms", "nft -f ms", "iptables-restore ms");
  for (size_t n : sizes) {
    auto g = bench::generate_mapping(bench::Mix::kSimple, n, seed);
    if (route_only) {
      // Every link in route mode: no NAT port claims, classification and the flow entry only.
      for (const char* snat : {"    snat: 198.18.0.2\n", "    snat: masquerade\n"})
        if (auto at = g.yaml.find(snat); at != std::string::npos) g.yaml.erase(at, std::strlen(snat));
      for (size_t at; (at = g.yaml.find("mode: redirect")) != std::string::npos;) g.yaml.replace(at, 14, "mode: route");
    }
    auto a = apply_cost(site, g, runs);
    auto p = per_packet(site, g, flows, seed + n);
    std::cout << fmt::format("{:>7} | {:>16} {:>16} {:>7.0f}ns | {:>18} {:>18} {:>18} | {:>18} {:>18}\n", n,
                             fmt_stats(p.new_flow_ns, "ns"), fmt_stats(p.new_flow_miss_ns, "ns"), p.known_flow_ns,
                             fmt_ms(a.check_ms), fmt_ms(a.kernel_ms), fmt_ms(a.total_ms), fmt_ms(a.nft_ms),
                             fmt_ms(a.ipt_ms))
              << std::flush;
  }
  return 0;
}
