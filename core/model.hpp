// The WAN mapping model: what a wan.yaml says, as plain values with the
// source position of every entry. See man/clovis-wan.yaml.5 for the format.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "budget.hpp"
#include "diagnostics.hpp"
#include "net.hpp"
#include "opt_string.hpp"

namespace clovis::core {

enum class SteerMode : uint8_t { kRoute, kRedirect };
enum class SnatMode : uint8_t { kNone, kAddress, kMasquerade };
enum class ProbeKind : uint8_t { kIcmp, kTcp, kHttp, kDns };
enum class OnLinkDown : uint8_t { kMigrate, kKeep, kDrop };
enum class LastResort : uint8_t { kDefault, kDrop };
enum class Sticky : uint8_t { kFlow, kSource, kSourceDest };
// What clovisd answers a proxy's ext_authz Check whose verdict is drop.
enum class OnDrop : uint8_t { kAllow, kDeny };
// What the data path does with a packet it cannot classify (`unparsed:`).
enum class Unparsed : uint8_t { kDrop, kPass };
// How a policy chooses among its members (`strategy:`): by tier and weight as
// written, or the member with the best measured quality first.
enum class Strategy : uint8_t { kTiers, kBestQuality };
// What a policy with an SLA does when none of its usable members meets it.
enum class SlaFallback : uint8_t { kBestOfWorst, kKeep, kLastResort };
// What a policy's live flows do when their link leaves the policy's SLA
// (`on-sla-violation:`), and when a better member is back (`on-link-up:`).
// kForce: translated flows too (they restart: a new source address).
enum class OnSlaViolation : uint8_t { kMigrate, kKeep, kForce };
enum class OnLinkUp : uint8_t { kStay, kReturn, kForce };

struct Probe {
  ProbeKind kind = ProbeKind::kIcmp;
  IpAddr target;
  uint16_t port = 0;  // tcp, http (default 80), dns (default 53)
  SourceLoc loc;
  std::string path;  // http: the request target, "/..."
  std::string name;  // dns: the query name ("." when not given)
};

struct Health {
  std::vector<Probe> probes;
  uint32_t interval_ms = 1000;
  uint32_t timeout_ms = 800;
  uint32_t down_after = 3;                 // consecutive failed rounds before down
  uint32_t up_after = 3;                   // consecutive good rounds before up
  uint32_t reliability = 1;                // targets that must answer for a round to be good
  std::optional<double> max_loss_pct;      // degraded above this
  std::optional<uint32_t> max_latency_ms;  // degraded above this
  std::optional<uint32_t> max_jitter_ms;   // degraded above this
  SourceLoc loc;
};

struct Link {
  std::string name;
  std::string interface;
  std::optional<IpAddr> gateway4, gateway6;
  std::optional<std::array<uint8_t, 6>> gateway_mac;
  bool point_to_point = false;
  SteerMode mode = SteerMode::kRoute;
  SnatMode snat = SnatMode::kNone;
  std::optional<IpAddr> snat4, snat6;  // snat: address
  std::optional<uint32_t> mark;        // default assigned by the compiler
  std::optional<uint32_t> table;       // default assigned by the compiler
  std::vector<std::string> labels;
  uint32_t weight = 1;  // default weight when a policy names the link
  // route mode: the host masquerades on this link, so a flow changes its
  // source address when it moves onto or off it (as with snat).
  bool masquerade = false;
  std::optional<Health> health;
  std::optional<Budget> budget;  // a metered link: its data per month
  SourceLoc loc;
};

// An SLA class (`sla:` entries): the smoothed quality a link must have to
// carry a policy that names the class. Each limit is optional.
struct SlaClass {
  std::string name;
  std::optional<uint32_t> max_latency_ms;
  std::optional<uint32_t> max_jitter_ms;
  std::optional<double> max_loss_pct;
  SourceLoc loc;
};

struct Member {
  std::string link;
  uint32_t tier = 1;
  std::optional<uint32_t> weight;  // default: the link's weight
  SourceLoc loc;
};

struct Policy {
  std::string name;
  std::vector<Member> members;
  OnLinkDown on_link_down = OnLinkDown::kMigrate;
  LastResort last_resort = LastResort::kDefault;
  Sticky sticky = Sticky::kFlow;
  bool avoid_degraded = true;
  std::string sla;  // an SlaClass name; empty: none
  SourceLoc sla_loc;
  Strategy strategy = Strategy::kTiers;
  SlaFallback fallback = SlaFallback::kBestOfWorst;
  bool fallback_set = false;   // written in the file (validate warns without sla:)
  bool metered_allow = false;  // metered: allow: keeps its links when they are over budget
  SourceLoc metered_loc;       // where metered: was written (none: line 0)
  OnSlaViolation on_sla_violation = OnSlaViolation::kMigrate;
  uint32_t hold_down_ms = 30000;  // live flows leave a link at most once per hold-down
  bool sla_moves_set = false;     // on-sla-violation: or hold-down: written (validate warns without sla:)
  OnLinkUp on_link_up = OnLinkUp::kStay;
  uint32_t return_after_ms = 60000;  // a better member must be healthy this long first
  SourceLoc loc;
};

struct Header {
  std::string name;  // lower case
  std::string value;
  SourceLoc loc;
};

struct Match {
  std::vector<Cidr> src, dst;
  std::vector<PortRange> sport, dport;
  std::vector<uint8_t> proto;
  std::optional<uint8_t> dscp;
  std::optional<std::pair<uint32_t, uint32_t>> mark;  // value, mask
  // OptString, not std::optional<std::string>: 8 bytes instead of 40 for
  // fields most rules leave unset (docs/BENCHMARKS.md, "Bounded apply").
  OptString interface;  // ingress interface
  // L7: only a proxy sees these; the kernel never matches a rule that has them.
  OptString host;  // lower case; "*.example.com" matches subdomains
  OptString path_prefix;
  OptString method;  // upper case
  std::vector<Header> headers;

  bool has_l7() const { return host || path_prefix || method || !headers.empty(); }
};

enum class TargetKind : uint8_t { kPolicy, kLink, kBypass, kDrop };

struct Target {
  TargetKind kind = TargetKind::kBypass;
  std::string name;  // policy or link name
  SourceLoc loc;
};

struct Rule {
  std::string name;
  uint32_t priority = 0;
  Match match;
  Target target;
  SourceLoc loc;
};

// proxy: how clovisd answers the proxy that asks it per request.
struct ProxySettings {
  // allow: fail-open, the answer is OK whatever the verdict; deny: a drop
  // verdict is answered with a denial (403).
  OnDrop on_drop = OnDrop::kAllow;
};

// Rules a mapping may have: 100,000, under the kernel table's 262,143
// (CLV_MAX_RULES less the default's id). Checking a rule (load, validate,
// compile) costs ~0.5 KB, so at 262k rules clovisd grew by ~150 MB; at
// 100,000 it stays under the 100 MB that issue #13 allows an apply
// (docs/BENCHMARKS.md, "Bounded apply"). The loader refuses a longer list by
// its length, unread.
inline constexpr size_t kMaxRulesPerMapping = 100'000;
// The same bound on lists whose items cost more than their YAML text: a
// header is ~140 bytes checked (the model's and the L7 table's copies), a
// label 64 (the model's and LinkInfo's). Members are held to the kernel's
// CLV_POLICY_MAX_MEMBERS as they are read.
inline constexpr size_t kMaxHeadersPerMapping = 65'536;
// Rules that match on HTTP (host, path-prefix, method, headers): each costs
// ~1 KB checked (its strings, its L7 table row and host index).
inline constexpr size_t kMaxL7RulesPerMapping = 16'384;
inline constexpr size_t kMaxLabelsPerLink = 64;

// auto-rollback: a mapping that leaves the host no usable link (every link
// down or without an address) for `after_ms` after its apply, while the
// mapping before it had one, is rolled back to that mapping (clovisd's
// commit-confirm path, confirmed by a usable link instead of an operator).
struct AutoRollback {
  uint32_t after_ms = 30000;
  SourceLoc loc;
};
inline constexpr uint32_t kMinAutoRollbackMs = 1000;
inline constexpr uint32_t kMaxAutoRollbackMs = 3600 * 1000;

struct Mapping {
  std::vector<SlaClass> slas;
  std::optional<AutoRollback> auto_rollback;
  std::vector<Link> links;
  std::vector<Policy> policies;
  std::vector<Rule> rules;
  std::optional<Target> default_target;
  SourceLoc default_loc;
  ProxySettings proxy;
  Unparsed unparsed = Unparsed::kDrop;

  const Link* find_link(const std::string& name) const;
  const Policy* find_policy(const std::string& name) const;
  const SlaClass* find_sla(const std::string& name) const;
};

const char* to_string(SteerMode m);
const char* to_string(SnatMode m);
const char* to_string(OnLinkDown d);
const char* to_string(LastResort l);
const char* to_string(Sticky s);
const char* to_string(OnDrop d);
const char* to_string(Unparsed u);
const char* to_string(TargetKind k);
const char* to_string(Strategy s);
const char* to_string(SlaFallback f);
const char* to_string(OnSlaViolation v);
const char* to_string(OnLinkUp u);

}  // namespace clovis::core
