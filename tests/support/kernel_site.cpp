#include "kernel_site.hpp"

#include <net/if.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <bpf/bpf.h>
#include <stdexcept>

namespace clovis::test {

namespace {

bool sh(const std::string& cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
}

}  // namespace

KernelSite::KernelSite(uint32_t flow_table_size) {
  if (!ns_.ok()) {
    error_ = ns_.error();
    return;
  }
  const char* setup[] = {"ip link set lo up",
                         "ip link add lan0 type veth peer name lan0p",
                         "ip link add lan1 type veth peer name lan1p",
                         "ip link add lan2 type veth peer name lan2p",
                         "ip link add wan0 type veth peer name wan0p",
                         "ip addr add 10.200.0.1/24 dev lan0",
                         "ip addr add 192.0.2.2/24 dev wan0",
                         "ip -6 addr add 2001:db8:ff::2/64 dev wan0 nodad",
                         "sh -c 'for i in lan0 lan0p lan1 lan1p lan2 lan2p wan0 wan0p; do ip link set $i up; done'",
                         "ip route add default via 192.0.2.1",
                         "ip -6 route add default via 2001:db8:ff::1",
                         "sysctl -w net.ipv4.ip_forward=1",
                         "sysctl -w net.ipv6.conf.all.forwarding=1"};
  for (const char* c : setup)
    if (!sh(c)) {
      error_ = std::string("setup failed: ") + c;
      return;
    }
  pin_dir_ = "/sys/fs/bpf/clovis-test-" + std::to_string(getpid());
  agent::kernel::BpfOptions o;
  o.pin_dir = pin_dir_;
  o.flow_table_size = flow_table_size;
  auto dp = agent::kernel::BpfDataplane::open(o);
  if (!dp) {
    error_ = dp.error().what();
    return;
  }
  dp_ = std::move(dp.value());
}

KernelSite::~KernelSite() {
  dp_.reset();
  if (!pin_dir_.empty()) {
    (void)agent::kernel::BpfDataplane::unpin_all(pin_dir_);
    std::error_code ec;
    std::filesystem::remove_all(pin_dir_, ec);
  }
}

int KernelSite::ifindex(const std::string& name) const {
  return static_cast<int>(if_nametoindex(name.c_str()));
}

const core::CompiledRules& KernelSite::apply(const std::string& yaml) {
  core::CompileOptions o;
  o.previous = applied_.empty() ? nullptr : applied_.back().get();
  o.generation = applied_.empty() ? 1 : applied_.back()->generation + 1;
  auto c = core::check_mapping(yaml, o);
  if (!c.ok()) {
    std::string diags;
    for (const auto& d : c.diagnostics.items()) diags += core::format_diagnostic(d, "site.yaml") + "\n";
    throw std::runtime_error("mapping rejected:\n" + diags);
  }
  return install(std::move(*c.compiled));
}

const core::CompiledRules& KernelSite::apply(const core::Mapping& m) {
  core::CompileOptions o;
  o.previous = applied_.empty() ? nullptr : applied_.back().get();
  o.generation = applied_.empty() ? 1 : applied_.back()->generation + 1;
  auto out = core::compile(m, o);
  if (out.diagnostics.has_errors()) throw std::runtime_error("mapping rejected by compile()");
  return install(std::move(out.rules));
}

const core::CompiledRules& KernelSite::install(core::CompiledRules c) {
  applied_.push_back(std::make_unique<core::CompiledRules>(std::move(c)));
  const core::CompiledRules& rules = *applied_.back();
  agent::ResolvedRules r;
  r.rules = &rules;
  r.links = rules.links;
  for (int s = 0; s < CLV_MAX_LINKS; ++s)
    if (!rules.link_info[s].name.empty()) r.links[s].ifindex = static_cast<uint32_t>(ifindex("wan0"));
  for (size_t i = 0; i < rules.iifs.size(); ++i)
    if (int idx = ifindex(rules.iifs[i])) r.iifs.emplace_back(static_cast<uint32_t>(idx), static_cast<uint32_t>(i + 1));
  r.state = rules.all_up_state();
  auto st = dp_->apply(r);
  if (!st) throw std::runtime_error("apply: " + st.error().what());
  last_apply_ = *st;
  return rules;
}

void KernelSite::set_link_state(const clv_link_state& st) {
  if (auto r = dp_->set_link_state(st); !r) throw std::runtime_error(r.error().what());
}

void KernelSite::clear_flows() {
  auto all = dp_->flows();
  if (!all) throw std::runtime_error(all.error().what());
  for (const auto& e : *all) {
    bpf_map_delete_elem(dp_->flows_fd(), &e.key);
    bpf_map_delete_elem(dp_->flows_new_fd(), &e.key);
  }
  for (int fd : {dp_->nat_fd(), dp_->nat_new_fd()}) {
    clv_nat_key k{}, next{};
    while (bpf_map_get_next_key(fd, nullptr, &next) == 0) {
      k = next;
      bpf_map_delete_elem(fd, &k);
    }
  }
}

RunResult KernelSite::run(const std::vector<uint8_t>& pkt, const std::string& iif, uint32_t mark, int repeat,
                          uint32_t* duration_ns) {
  return run_prog(dp_->lan_in_fd(), pkt, iif, mark, repeat, duration_ns);
}

RunResult KernelSite::run_wan_in(const std::vector<uint8_t>& pkt) {
  return run_prog(dp_->wan_in_fd(), pkt, "wan0", 0, 1, nullptr);
}

RunResult KernelSite::run_lan_out(const std::vector<uint8_t>& pkt, const std::string& oif) {
  return run_prog(dp_->lan_out_fd(), pkt, oif, 0, 1, nullptr);
}

RunResult KernelSite::run_prog(int prog_fd, const std::vector<uint8_t>& pkt, const std::string& iif, uint32_t mark,
                               int repeat, uint32_t* duration_ns) {
  RunResult r;
  r.out.resize(pkt.size() + 256);
  __sk_buff ctx{};
  ctx.ifindex = static_cast<uint32_t>(ifindex(iif.empty() ? "lan2" : iif));
  ctx.mark = mark;
  __sk_buff ctx_out{};
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt.data(), .data_out = r.out.data(),
              .data_size_in = static_cast<uint32_t>(pkt.size()), .data_size_out = static_cast<uint32_t>(r.out.size()),
              .ctx_in = &ctx, .ctx_out = &ctx_out, .ctx_size_in = sizeof ctx, .ctx_size_out = sizeof ctx_out,
              .repeat = repeat);
  if (bpf_prog_test_run_opts(prog_fd, &opts) != 0)
    throw std::runtime_error(std::string("BPF_PROG_TEST_RUN: ") + std::strerror(errno));
  if (duration_ns) *duration_ns = opts.duration;
  r.retval = static_cast<int>(opts.retval);
  r.mark = ctx_out.mark;
  r.out.resize(opts.data_size_out);
  return r;
}

bool KernelSite::flow(const clv_flow_key& k, clv_flow* out) const {
  return bpf_map_lookup_elem(dp_->flows_fd(), &k, out) == 0 || bpf_map_lookup_elem(dp_->flows_new_fd(), &k, out) == 0;
}

clv_flow_key flow_key_of(const clv_tuple& t, uint16_t icmp_id) {
  clv_flow_key k{};
  std::memcpy(k.src, t.src, sizeof k.src);
  std::memcpy(k.dst, t.dst, sizeof k.dst);
  const bool ports = t.proto == 6 || t.proto == 17 || t.proto == 132 || t.proto == 136;
  const bool echo = t.proto == 1 || t.proto == 58;
  k.sport = ports ? t.sport : echo ? icmp_id : 0;
  k.dport = ports ? t.dport : 0;
  k.proto = t.proto;
  k.family = t.family;
  return k;
}

}  // namespace clovis::test
