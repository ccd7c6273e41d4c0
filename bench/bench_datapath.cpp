// Data-path benchmark (root): the real clovis program in a private network
// namespace.
//   per packet  BPF_PROG_TEST_RUN: a new flow's classification (every packet a
//               new flow; kernel-measured ns per run) and a known flow's packet
//               (one packet, repeated), at 10..100k rules
//   apply       text -> compiled tables -> shadow bank -> flip, stage by stage,
//               next to the peers users compare with, in the same run: `nft -f`
//               loading a map of the same size and `iptables-restore` of N mark
//               rules; --mapping peers: the peer suite's rule sets (issue 6)
// Speed is reported, never asserted. See docs/BENCHMARKS.md.
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/diff.hpp"
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
void write_peers(const bench::Generated& g, std::string* nft, std::string* ipt) {
  std::ostringstream n, i;
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
  *nft = n.str();
  *ipt = i.str();
}

struct PacketCost {
  Stats new_flow_ns, new_flow_miss_ns;
  double known_flow_ns = 0, replied_ns = 0;
};

// A known flow's packet once the remote has answered (connection tracking:
// assured, in the flow table new flows cannot evict): a UDP flow of the last
// rule, its first reply through clv_lan_out as a route-mode link sees it.
// Timed with repeat=200000 like `known`, which is a flow never answered.
double known_replied(test::KernelSite& site, const bench::Generated& g, bench::Rng& rng) {
  test::PacketSpec p;
  p.tuple = bench::tuple_in(g.rules.back(), rng);
  p.tuple.proto = IPPROTO_UDP;
  if (!p.tuple.sport) p.tuple.sport = 40000;
  if (!p.tuple.dport) p.tuple.dport = 53;
  const auto pkt = test::build_packet(p);
  site.run(pkt, "lan0");
  test::PacketSpec rp = p;
  std::swap(rp.tuple.sport, rp.tuple.dport);
  std::memcpy(rp.tuple.src, p.tuple.dst, sizeof rp.tuple.src);
  std::memcpy(rp.tuple.dst, p.tuple.src, sizeof rp.tuple.dst);
  auto reply = test::build_packet(rp);
  std::vector<uint8_t> out(reply.size() + 256);
  __sk_buff ctx{};
  ctx.ifindex = static_cast<uint32_t>(site.ifindex("lan0"));
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = reply.data(), .data_out = out.data(),
              .data_size_in = static_cast<uint32_t>(reply.size()), .data_size_out = static_cast<uint32_t>(out.size()),
              .ctx_in = &ctx, .ctx_size_in = sizeof ctx, .repeat = 1);
  if (bpf_prog_test_run_opts(site.dp().lan_out_fd(), &opts) != 0)
    throw std::runtime_error(std::string("BPF_PROG_TEST_RUN of clv_lan_out: ") + std::strerror(errno));
  clv_flow f{};
  const clv_flow_key k = test::flow_key_of(p.tuple);
  if (bpf_map_lookup_elem(site.dp().flows_fd(), &k, &f) != 0)  // the assured table (the only one before it)
    throw std::runtime_error("the replied flow is not in clv_flows");
  uint32_t dur = 0;
  site.run(pkt, "lan0", 0, 200000, &dur);
  return dur;
}

PacketCost per_packet(test::KernelSite& site, const bench::Generated& g, int flows, uint64_t seed) {
  bench::Rng rng(seed);
  std::vector<double> hit, miss;
  uint32_t dur = 0;
  for (int i = 0; i < flows; ++i) {
    if (i % 8192 == 0) site.clear_flows();  // stay far from LRU eviction
    // The last rule: worst case for a linear scan; one distinct source port per flow.
    clv_tuple t =
        bench::tuple_in(g.rules[(i % 2) ? g.rules.size() - 1 : rng.below(static_cast<uint32_t>(g.rules.size()))], rng);
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
  const double replied = known_replied(site, g, rng);
  return {stats(hit), stats(miss), static_cast<double>(dur), replied};
}

struct ApplyCost {
  Stats parse, load, validate, compile, diff, kernel, kernel_empty, total, nft, ipt;
};

// What clovisd does for an apply, stage by stage: check (parse, load,
// validate, compile against the running rules), diff against the running
// mapping, shadow-bank writes and the flip. `texts` take turns replacing the
// running mapping (texts[0] is applied once first, unmeasured); the peers
// load their scripts from empty in the same namespace after each apply.
ApplyCost apply_cost(test::KernelSite& site, const std::vector<std::string>& texts, const std::string& nft_script,
                     const std::string& nft_clear, const std::string& ipt_script, int runs) {
  std::vector<double> parse, load, validate, compile, diff, kernel, total, nft, ipt;
  const std::string nft_file = "/tmp/clovis-bench-" + std::to_string(getpid()) + ".nft";
  const std::string ipt_file = "/tmp/clovis-bench-" + std::to_string(getpid()) + ".ipt";
  std::ofstream(nft_file) << nft_script;
  std::ofstream(ipt_file) << ipt_script;
  auto first = core::check_mapping(texts[0]);
  if (!first.ok()) throw std::runtime_error("generated mapping rejected");
  core::Mapping running = std::move(*first.mapping);
  // The shadow bank holds the rules of two applies ago and only the difference
  // is written. The peer suite's apply comes first after clovisd starts, into
  // a bank that holds nothing: every entry is written. Measured apart.
  std::vector<double> kernel_empty;
  core::Mapping no_rules = running;
  no_rules.rules.clear();
  for (int i = 0; i < std::min(runs, 3); ++i) {
    site.apply(no_rules);
    site.apply(no_rules);
    site.apply(running);
    kernel_empty.push_back(site.last_apply().write_ms);
  }
  const core::CompiledRules* rules = &site.apply(running);
  for (int i = 0; i < runs; ++i) {
    core::CompileOptions o;
    o.previous = rules;
    o.generation = rules->generation + 1;
    auto checked = core::check_mapping(texts[static_cast<size_t>(i + 1) % texts.size()], o);
    if (!checked.ok()) throw std::runtime_error("generated mapping rejected");
    auto t0 = Clock::now();
    auto changes = core::diff_mappings(&running, *checked.mapping);
    diff.push_back(ms_since(t0));
    rules = &site.apply(*checked.mapping);  // compiles again, untimed
    parse.push_back(checked.times.parse_ms);
    load.push_back(checked.times.load_ms);
    validate.push_back(checked.times.validate_ms);
    compile.push_back(checked.times.compile_ms);
    kernel.push_back(site.last_apply().write_ms);
    total.push_back(checked.times.total_ms() + diff.back() + kernel.back());
    running = std::move(*checked.mapping);
    nft.push_back(timed_sh("nft -f " + nft_file));
    if (!nft_clear.empty()) std::system((nft_clear + " 2>/dev/null").c_str());
    ipt.push_back(timed_sh("iptables-restore < " + ipt_file));
  }
  std::remove(nft_file.c_str());
  std::remove(ipt_file.c_str());
  std::system("nft flush ruleset; iptables -t mangle -F");
  return {stats(parse),  stats(load),         stats(validate), stats(compile), stats(diff),
          stats(kernel), stats(kernel_empty), stats(total),    stats(nft),     stats(ipt)};
}

std::string fmt_stats(const Stats& s, const char* unit) {
  return fmt::format("{:.0f}{} [{:.0f}-{:.0f}]", s.median, unit, s.min, s.max);
}

std::string fmt_ms(const Stats& s) {
  if (s.min < 0) return "failed";
  return fmt::format("{:.1f} [{:.1f}-{:.1f}]", s.median, s.min, s.max);
}

struct Options {
  bool quick = false, route_only = false, apply_only = false, peers = false;
  std::vector<size_t> sizes = {10, 1000, 10000, 100000};
  uint64_t seed = 20261122;
};

void print_stages(size_t n, const ApplyCost& a) {
  std::cout
      << fmt::format(
             "{:>7} | {:>7.2f} {:>7.2f} {:>8.2f} {:>7.2f} {:>6.2f} {:>7.2f} | {:>20} | {:>12.2f} | {:>20} {:>20}\n", n,
             a.parse.median, a.load.median, a.validate.median, a.compile.median, a.diff.median, a.kernel.median,
             fmt_ms(a.total), a.kernel_empty.median, fmt_ms(a.nft), fmt_ms(a.ipt))
      << std::flush;
}

int run(const Options& o) {
  test::KernelSite site;
  if (!site.ok()) {
    std::cerr << "clovis-bench-datapath: " << site.error() << "\n";
    return 1;
  }
  const int flows = o.quick ? 2000 : 20000, runs = o.quick ? 3 : 7;
  std::cout << fmt::format("seed {}, {} new flows per size, {} apply runs, mapping: {}; median [min-max]\n\n", o.seed,
                           flows, runs,
                           o.peers        ? "the peer suite's (N /32 rules replaced by N others, nft map peer)"
                           : o.route_only ? "simple, all links route mode"
                                          : "simple, route + redirect with NAT");
  if (!o.apply_only)
    std::cout << fmt::format("{:>7} | {:>16} {:>16} {:>9} {:>9}\n", "rules", "new flow (hit)", "new flow (miss)",
                             "known", "replied");
  std::vector<std::pair<size_t, ApplyCost>> applies;
  for (size_t n : o.sizes) {
    auto g = bench::generate_mapping(bench::Mix::kSimple, n, o.seed);
    if (o.route_only || o.peers) {
      // Every link in route mode: no NAT port claims, classification and the flow entry only.
      for (const char* snat : {"    snat: 198.18.0.2\n", "    snat: masquerade\n"})
        if (auto at = g.yaml.find(snat); at != std::string::npos) g.yaml.erase(at, std::strlen(snat));
      for (size_t at; (at = g.yaml.find("mode: redirect")) != std::string::npos;) g.yaml.replace(at, 14, "mode: route");
    }
    if (o.peers) {
      const bench::PeerRules last{n, n - 1}, random{n, bench::peers_random_pos(n)};
      applies.emplace_back(
          n, apply_cost(site, {bench::peers_mapping(last), bench::peers_mapping(random)}, bench::peers_nft_script(last),
                        "nft delete table ip clvbench", bench::peers_iptables_script(last), runs));
    } else {
      std::string nft, ipt;
      write_peers(g, &nft, &ipt);
      applies.emplace_back(n, apply_cost(site, {g.yaml}, nft, "", ipt, runs));
    }
    if (!o.apply_only) {
      auto p = per_packet(site, g, flows, o.seed + n);
      std::cout << fmt::format("{:>7} | {:>16} {:>16} {:>7.0f}ns {:>7.0f}ns\n", n, fmt_stats(p.new_flow_ns, "ns"),
                               fmt_stats(p.new_flow_miss_ns, "ns"), p.known_flow_ns, p.replied_ns)
                << std::flush;
    }
  }
  std::cout << fmt::format(
      "\napply, ms (stages: medians; kernel: into the bank of two applies ago, only the "
      "difference;\nkernel, empty bank: every entry written, as on the first apply after start)\n"
      "{:>7} | {:>7} {:>7} {:>8} {:>7} {:>6} {:>7} | {:>20} | {:>12} | {:>20} {:>20}\n",
      "rules", "parse", "load", "validate", "compile", "diff", "kernel", "clovis apply", "kernel, empty", "nft -f",
      "iptables-restore");
  for (const auto& [n, a] : applies) print_stages(n, a);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") o.quick = true, o.sizes = {10, 1000};
    else if (a == "--seed" && i + 1 < argc) o.seed = std::stoull(argv[++i]);
    else if (a == "--route-only") o.route_only = true;
    else if (a == "--apply-only") o.apply_only = true;
    else if (a == "--mapping" && i + 1 < argc &&
             (std::string(argv[i + 1]) == "peers" || std::string(argv[i + 1]) == "simple"))
      o.peers = std::string(argv[++i]) == "peers";
    else if (a == "--sizes" && i + 1 < argc) {
      o.sizes.clear();
      for (std::string v = argv[++i], x; !v.empty();
           v = v.find(',') == std::string::npos ? "" : v.substr(v.find(',') + 1))
        o.sizes.push_back(std::stoul(v.substr(0, v.find(','))));
    } else {
      std::cerr << "usage: clovis-bench-datapath [--quick] [--route-only] [--apply-only] [--mapping simple|peers]\n"
                   "                             [--sizes 10,1000,...] [--seed N]\n";
      return 2;
    }
  }
  if (!test::have_privileges()) {
    std::cerr << "clovis-bench-datapath: needs root (network namespace, BPF)\n";
    return 1;
  }
  try {
    return run(o);
  } catch (const std::exception& e) {  // reached after KernelSite's destructor unpinned its maps
    std::cerr << "clovis-bench-datapath: " << e.what() << "\n";
    return 1;
  }
}
