// A private network namespace with a few interfaces and routes, the real
// clovis program loaded into it (maps pinned under a per-run directory), and
// BPF_PROG_TEST_RUN to push packets through clv_lan_in (or clv_wan_in). Failures throw
// std::runtime_error (tests and benchmarks both use it).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/classifier.hpp"
#include "core/pipeline.hpp"
#include "kernel/bpf_dataplane.hpp"
#include "netns.hpp"

namespace clovis::test {

// The TC verdicts the program returns (linux/pkt_cls.h).
inline constexpr int kActOk = -1;  // TC_ACT_UNSPEC: the stack takes it
inline constexpr int kActShot = 2;
inline constexpr int kActRedirect = 7;

struct RunResult {
  int retval = 0;
  uint32_t mark = 0;
  std::vector<uint8_t> out;
};

class KernelSite {
 public:
  // flow_table_size: BpfOptions::flow_table_size (each of the four flow and NAT maps).
  explicit KernelSite(uint32_t flow_table_size = 1u << 17);
  ~KernelSite();
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  int ifindex(const std::string& name) const;
  // Applies a mapping (through the same pipeline as clovisd); every link is
  // wan0, whose gateway answers for 192.0.2.1 and 2001:db8:ff::1.
  const core::CompiledRules& apply(const std::string& yaml);
  const core::CompiledRules& apply(const core::Mapping& m);
  void set_link_state(const clv_link_state& st);
  void clear_flows();

  // Through clv_lan_in, as if it had arrived on `iif`.
  RunResult run(const std::vector<uint8_t>& pkt, const std::string& iif, uint32_t mark = 0, int repeat = 1,
                uint32_t* duration_ns = nullptr);
  // Through clv_wan_in, as if it had arrived on wan0.
  RunResult run_wan_in(const std::vector<uint8_t>& pkt);
  // Through clv_lan_out, as if the stack were sending it out of `oif` (route
  // mode's return traffic, after the kernel's routing and NAT).
  RunResult run_lan_out(const std::vector<uint8_t>& pkt, const std::string& oif);
  bool flow(const clv_flow_key& k, clv_flow* out) const;
  agent::kernel::BpfDataplane& dp() { return *dp_; }
  const std::string& pin_dir() const { return pin_dir_; }
  const agent::ApplyStats& last_apply() const { return last_apply_; }

 private:
  const core::CompiledRules& install(core::CompiledRules c);
  RunResult run_prog(int prog_fd, const std::vector<uint8_t>& pkt, const std::string& iif, uint32_t mark, int repeat,
                     uint32_t* duration_ns);

  NetnsGuard ns_;
  std::string error_, pin_dir_;
  std::unique_ptr<agent::kernel::BpfDataplane> dp_;
  std::vector<std::unique_ptr<core::CompiledRules>> applied_;
  agent::ApplyStats last_apply_;
};

// The flow key the program derives from a spec'd packet.
clv_flow_key flow_key_of(const clv_tuple& t, uint16_t icmp_id = 0);

}  // namespace clovis::test
