// SLA classes (#17 items 1 and 6): the mapping syntax and its errors, the
// decision table (core/sla.hpp), simulate's explanation and what-if values,
// and the agent programming exactly what simulate explains.
#include <random>

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_run.hpp"
#include "core/classifier.hpp"
#include "core/diff.hpp"
#include "core/json/decision_json.hpp"
#include "core/sla.hpp"
#include "fakes.hpp"
#include "helpers.hpp"
#include "service_api.hpp"

using namespace clovis;
using test::check;
using test::has;

namespace {

// fiber (tier 1), cable (tier 2), lte (tier 3), all probed; the voice
// policy's SLA, strategy and fallback are filled in by voice_mapping().
const char* kSlaMapping = R"(version: 1
sla:
  voice: {latency: 150ms, jitter: 30ms, loss: 1%}
  bulk: {loss: 5%}
links:
  - name: fiber
    interface: wan0
    gateway: 192.0.2.1
    health: {probes: [{icmp: 192.0.2.1}]}
  - name: cable
    interface: wan1
    gateway: 198.51.100.1
    health: {probes: [{icmp: 198.51.100.1}]}
  - name: lte
    interface: wan2
    gateway: 203.0.113.1
    health: {probes: [{icmp: 203.0.113.1}]}
policies:
  - name: voice
    failover: [fiber, cable, lte]
@POLICY@
  - name: bulk
    members: [fiber, cable]
    sla: bulk
rules:
  - {name: bulk, priority: 10, match: {dport: 873, proto: tcp}, policy: bulk}
default: {policy: voice}
)";

std::string voice_mapping(const std::string& extra) {
  std::string m = kSlaMapping;
  m.replace(m.find("@POLICY@"), 8, extra);
  return m;
}

core::CompiledRules compiled(const std::string& yaml) {
  auto c = check(yaml);
  INFO(test::dump(c));
  REQUIRE(c.ok());
  return *c.compiled;
}

core::LinkQuality measured(double latency, double jitter, double loss) {
  return {latency, jitter, loss, true};
}

// The voice policy's decision for qualities given by link name.
struct Voice {
  core::CompiledRules c;
  core::LinkQualities q{};
  explicit Voice(const std::string& policy_keys) : c(compiled(voice_mapping(policy_keys))) {}
  void set(const std::string& link, core::LinkQuality lq) { q[static_cast<size_t>(c.link_slot(link))] = lq; }
  core::SlaDecision decide() const {
    const int p = c.policy_index("voice");
    return core::decide_sla(c.policies[p], c.policy_sla[p], q);
  }
  // The link the kernel would pick for a flow of the default (voice), all
  // links up unless `down`.
  std::string link(const std::string& down = "") const {
    clv_link_state st = c.all_up_state();
    if (!down.empty()) st.up &= ~(1ull << c.link_slot(down));
    core::FlowQuery fq;
    fq.tuple.family = CLV_AF_INET;
    fq.tuple.src[0] = core::IpAddr::parse("10.0.0.5")->words()[0];
    fq.tuple.dst[0] = core::IpAddr::parse("192.0.2.200")->words()[0];
    fq.tuple.proto = 17;
    fq.tuple.dport = 5060;
    const core::Classifier cls(c);
    auto d = cls.decide(fq, st, q);
    if (d.verdict != core::Verdict::kSteer) return core::to_string(d.verdict);
    return c.link_info[d.link].name;
  }
  // Members' programmed tiers by link name, weight 0 as "-".
  std::string order() const {
    auto d = decide();
    std::string s;
    for (int i = 0; i < d.programmed.n_members; ++i) {
      const auto& m = d.programmed.members[i];
      s += fmt::format("{}{}:{}", s.empty() ? "" : " ", c.link_info[m.link].name,
                       m.weight ? std::to_string(m.tier) : "-");
    }
    return s;
  }
};

}  // namespace

TEST_CASE("sla: classes, policy keys and their defaults load") {
  auto c = check(voice_mapping("    sla: voice\n    strategy: best-quality\n    fallback: keep\n"));
  INFO(test::dump(c));
  REQUIRE(c.ok());
  const auto& m = *c.mapping;
  REQUIRE(m.slas.size() == 2);
  CHECK(m.slas[0].name == "voice");
  CHECK(m.slas[0].max_latency_ms == 150u);
  CHECK(m.slas[0].max_jitter_ms == 30u);
  CHECK(m.slas[0].max_loss_pct == 1.0);
  CHECK_FALSE(m.slas[1].max_latency_ms);
  CHECK(m.slas[1].max_loss_pct == 5.0);
  CHECK(m.policies[0].sla == "voice");
  CHECK(m.policies[0].strategy == core::Strategy::kBestQuality);
  CHECK(m.policies[0].fallback == core::SlaFallback::kKeep);
  CHECK(m.policies[1].strategy == core::Strategy::kTiers);           // default
  CHECK(m.policies[1].fallback == core::SlaFallback::kBestOfWorst);  // default
}

TEST_CASE("sla: bad values are errors at their line and column, with did-you-mean") {
  auto c = check(R"(version: 1
sla:
  voice: {latency: fast, jitter: 0ms, loss: 101%}
  video: {latncy: 100ms}
  "bad name": {loss: 1%}
links:
  - {name: a, interface: wan0, gateway: 192.0.2.1}
policies:
  - {name: p, failover: [a], sla: voice, strategy: best-qualty, fallback: keeep}
default: {policy: p}
)");
  INFO(test::dump(c));
  CHECK(has(c, 3, "'fast' is not a duration"));
  CHECK(has(c, 3, "a limit of 0ms can never be met"));
  CHECK(has(c, 3, "'101%' is not a percentage 0-100"));
  CHECK(has(c, 4, "unknown key 'latncy'"));
  CHECK(has(c, 4, "did you mean 'latency'?"));
  CHECK(has(c, 5, "invalid name 'bad name'"));
  CHECK(has(c, 9, "'best-qualty' is not one of: tiers, best-quality"));
  CHECK(has(c, 9, "did you mean 'best-quality'?"));
  CHECK(has(c, 9, "did you mean 'keep'?"));
  bool located = false;
  for (const auto& d : c.diagnostics.items())
    if (d.message.find("101%") != std::string::npos) located = d.loc.line == 3 && d.loc.col == 45;
  CHECK(located);
  CHECK(has(check("version: 1\nsla: [voice]\nlinks: []\n"), 2, "sla: is a mapping of class names to limits"));
}

TEST_CASE("sla: an unknown class is an error at the policy's sla:, with did-you-mean") {
  auto c = check(voice_mapping("    sla: vioce\n"));
  INFO(test::dump(c));
  CHECK(has(c, 21, "unknown SLA class 'vioce'"));
  CHECK(has(c, 21, "did you mean 'voice'?"));
  auto none = check(std::string(test::kLinks) + "    sla: voice\ndefault: {policy: p}\n");
  CHECK(has(none, 0, "declare it under the top-level sla:"));
}

TEST_CASE("sla: warnings for a fallback without sla, unprobed members and an empty class") {
  auto c = check(R"(version: 1
sla:
  any: {}
links:
  - {name: a, interface: wan0, gateway: 192.0.2.1}
policies:
  - {name: p, failover: [a], fallback: keep}
  - {name: q, failover: [a], sla: any}
rules:
  - {name: r, priority: 1, match: {dport: 22, proto: tcp}, policy: q}
default: {policy: p}
)");
  INFO(test::dump(c));
  REQUIRE(c.ok());
  CHECK(has(c, 3, "sets no limit", core::Severity::kWarning));
  CHECK(has(c, 7, "has a fallback but no sla:", core::Severity::kWarning));
  CHECK(has(c, 8, "link 'a' has no health probes", core::Severity::kWarning));
}

TEST_CASE("sla: a mapping without SLAs compiles to the kernel's policies unchanged") {
  auto c = check(std::string(test::kLinks) + "default: {policy: p}\n");
  REQUIRE(c.ok());
  CHECK_FALSE(core::has_sla(*c.compiled));
  core::LinkQualities q{};
  q[0] = measured(900, 900, 90);
  CHECK(core::same_policies(core::sla_policies(*c.compiled, q), c.compiled->policies));
}

TEST_CASE("sla: the decision table") {
  SUBCASE("every member in SLA: the policy as written, byte for byte") {
    Voice v("    sla: voice\n");
    v.set("fiber", measured(20, 2, 0));
    v.set("cable", measured(30, 3, 0.5));
    const auto d = v.decide();
    CHECK(std::memcmp(&d.programmed, &v.c.policies[0], sizeof(clv_policy)) == 0);
    CHECK(v.link() == "fiber");
  }
  SUBCASE("one out of SLA: behind the others, with the reason") {
    Voice v("    sla: voice\n");
    v.set("fiber", measured(182, 2, 0));
    auto d = v.decide();
    CHECK_FALSE(d.members[0].in_sla);
    CHECK(d.members[0].why == "latency 182 ms > voice 150 ms");
    CHECK(d.members[1].in_sla);
    CHECK_FALSE(d.none_in_sla);
    CHECK(v.order() == "fiber:3 cable:1 lte:2");
    CHECK(v.link() == "cable");
    CHECK(v.link("cable") == "lte");
  }
  SUBCASE("jitter and loss are limits too") {
    Voice v("    sla: voice\n");
    v.set("fiber", measured(20, 31, 0));
    v.set("cable", measured(20, 1, 1.5));
    auto d = v.decide();
    CHECK(d.members[0].why == "jitter 31 ms > voice 30 ms");
    CHECK(d.members[1].why == "loss 1.5% > voice 1%");
    CHECK(v.link() == "lte");
  }
  SUBCASE("none in SLA, best-of-worst: the least excess first") {
    Voice v("    sla: voice\n    fallback: best-of-worst\n");
    v.set("fiber", measured(200, 2, 0));  // 1.33 of the limit
    v.set("cable", measured(20, 2, 5));   // 5.0
    v.set("lte", measured(160, 2, 0));    // 1.07
    CHECK(v.decide().none_in_sla);
    CHECK(v.order() == "fiber:2 cable:3 lte:1");
    CHECK(v.link() == "lte");
    CHECK(v.link("lte") == "fiber");
  }
  SUBCASE("none in SLA, keep: the policy's own order") {
    Voice v("    sla: voice\n    fallback: keep\n");
    v.set("fiber", measured(200, 2, 0));
    v.set("cable", measured(20, 2, 5));
    v.set("lte", measured(160, 2, 0));
    CHECK(v.order() == "fiber:1 cable:2 lte:3");
    CHECK(v.link() == "fiber");
  }
  SUBCASE("keep puts in-SLA members first all the same") {
    Voice v("    sla: voice\n    fallback: keep\n");
    v.set("fiber", measured(200, 2, 0));
    CHECK(v.order() == "fiber:3 cable:1 lte:2");
    CHECK(v.link() == "cable");
  }
  SUBCASE("none in SLA, last-resort: the policy's last resort") {
    Voice v("    sla: voice\n    fallback: last-resort\n    last-resort: drop\n");
    v.set("fiber", measured(200, 2, 0));
    v.set("cable", measured(20, 2, 5));
    v.set("lte", measured(160, 2, 0));
    CHECK(v.order() == "fiber:- cable:- lte:-");
    CHECK(v.link() == "drop");
  }
  SUBCASE("last-resort with an in-SLA member: only it, and down means last resort") {
    Voice v("    sla: voice\n    fallback: last-resort\n");
    v.set("fiber", measured(200, 2, 0));
    v.set("lte", measured(160, 2, 0));
    CHECK(v.link() == "cable");
    CHECK(v.link("cable") == "bypass");
  }
  SUBCASE("an in-SLA member that is down: no usable member meets it, the fallback decides at once") {
    Voice v("    sla: voice\n    fallback: best-of-worst\n");
    v.set("cable", measured(20, 2, 5));
    v.set("lte", measured(160, 2, 0));
    CHECK(v.link("fiber") == "lte");
  }
  SUBCASE("links not measured yet are taken as within the SLA") {
    Voice v("    sla: voice\n    fallback: last-resort\n");
    v.set("cable", measured(300, 2, 0));
    auto d = v.decide();
    CHECK(d.members[0].in_sla);
    CHECK_FALSE(d.members[0].measured);
    CHECK(d.members[0].why == "not measured yet: taken as within voice");
    CHECK(v.link() == "fiber");
  }
  SUBCASE("best-quality: lowest latency first, unmeasured last, ties by loss") {
    Voice v("    strategy: best-quality\n");
    v.set("fiber", measured(50, 2, 0.5));
    v.set("cable", measured(20, 2, 0));
    CHECK(v.order() == "fiber:2 cable:1 lte:3");
    CHECK(v.link() == "cable");
    v.set("fiber", measured(20, 1, 0.5));
    CHECK(v.order() == "fiber:2 cable:1 lte:3");
    v.set("fiber", measured(19, 1, 0.5));  // 5% better: the same step, loss decides
    CHECK(v.order() == "fiber:2 cable:1 lte:3");
    v.set("fiber", measured(16, 1, 0.5));  // 20% better: a step ahead
    CHECK(v.order() == "fiber:1 cable:2 lte:3");
  }
  SUBCASE("best-quality does not reorder on noise: microseconds apart, links keep their order") {
    Voice v("    strategy: best-quality\n");
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> us(0.004, 0.030);  // a namespace site's RTTs
    for (int round = 0; round < 200; ++round) {
      for (const char* l : {"fiber", "cable", "lte"}) v.set(l, measured(us(rng), us(rng), 0));
      CHECK(v.order() == "fiber:1 cable:2 lte:3");
    }
    v.set("cable", measured(0.5, 0.1, 0));
    v.set("fiber", measured(40, 0.1, 0));  // now a step behind: it goes last
    CHECK(v.order() == "fiber:3 cable:1 lte:2");
  }
  SUBCASE("best-quality with an SLA: the best in SLA, then best-of-worst") {
    Voice v("    sla: voice\n    strategy: best-quality\n");
    v.set("fiber", measured(10, 40, 0));  // best latency, jitter out
    v.set("cable", measured(90, 2, 0));
    v.set("lte", measured(60, 2, 0));
    CHECK(v.order() == "fiber:3 cable:2 lte:1");
    CHECK(v.link() == "lte");
  }
}

TEST_CASE("sla: an SLA change is in the apply diff") {
  auto a = check(voice_mapping("    sla: voice\n"));
  auto b = check([] {
    std::string m = voice_mapping("    sla: bulk\n    fallback: keep\n");
    m.replace(m.find("latency: 150ms"), 14, "latency: 100ms");
    return m;
  }());
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  auto d = core::diff_mappings(&*a.mapping, *b.mapping);
  REQUIRE(d.size() == 2);
  CHECK(d[0].kind == "sla");
  CHECK(d[0].name == "voice");
  CHECK(d[0].detail == "latency 150ms -> 100ms");
  CHECK(d[1].kind == "policy");
  CHECK(d[1].detail == "sla voice -> bulk, fallback best-of-worst -> keep");
}

TEST_CASE("sla: what-if arguments parse, and bad ones say why") {
  std::string link, err;
  double v = 0;
  CHECK(core::parse_quality_arg(core::QualityField::kLatency, "fiber=180ms", &link, &v, &err));
  CHECK(link == "fiber");
  CHECK(v == 180);
  CHECK(core::parse_quality_arg(core::QualityField::kJitter, "lte=0.5s", &link, &v, &err));
  CHECK(v == 500);
  CHECK(core::parse_quality_arg(core::QualityField::kLoss, "lte=3%", &link, &v, &err));
  CHECK(v == 3);
  CHECK_FALSE(core::parse_quality_arg(core::QualityField::kLoss, "lte=300%", &link, &v, &err));
  CHECK(err == "'300%' is not a loss value: write LINK=3%");
  CHECK_FALSE(core::parse_quality_arg(core::QualityField::kLatency, "180ms", &link, &v, &err));
  CHECK(err == "'180ms' is not LINK=180ms");
}

TEST_CASE("simulate explains each member's SLA standing, offline with what-if values") {
  test::TempDir dir("sla-sim");
  const std::string file = dir.path + "/wan.yaml";
  std::ofstream(file) << voice_mapping("    sla: voice\n    fallback: last-resort\n");
  const std::vector<std::string> flow = {"simulate", "-f", file, "--src", "10.0.0.5", "--dst", "192.0.2.200"};
  auto args = [&](std::vector<std::string> more) {
    auto a = flow;
    a.insert(a.end(), more.begin(), more.end());
    return a;
  };
  auto plain = test::clovisctl(flow);
  CHECK(plain.code == 0);
  CHECK(plain.out.find("steer via fiber") != std::string::npos);
  CHECK(plain.out.find("in: not measured yet: taken as within voice") != std::string::npos);

  auto r = test::clovisctl(args({"--latency", "fiber=182ms", "--loss", "cable=3%"}));
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find("steer via lte") != std::string::npos);
  CHECK(r.out.find("out: latency 182 ms > voice 150 ms") != std::string::npos);
  CHECK(r.out.find("out: loss 3% > voice 1%") != std::string::npos);
  CHECK(r.out.find("voice (latency 150 ms, jitter 30 ms, loss 1%), fallback last-resort") != std::string::npos);

  auto j = test::clovisctl(args({"--latency", "fiber=182ms", "-o", "json"}));
  REQUIRE(j.code == 0);
  auto doc = nlohmann::json::parse(j.out);
  CHECK(doc["link"]["name"] == "cable");
  CHECK(doc["policy"]["sla"]["name"] == "voice");
  CHECK(doc["policy"]["fallback"] == "last-resort");
  CHECK(doc["members"][0]["sla"]["in_sla"] == false);
  CHECK(doc["members"][0]["sla"]["latency_ms"] == 182.0);
  CHECK(doc["members"][0]["sla"]["why"] == "latency 182 ms > voice 150 ms");
  CHECK(doc["members"][1]["sla"]["measured"] == false);

  auto all_out =
      test::clovisctl(args({"--latency", "fiber=182ms", "--latency", "cable=200ms", "--jitter", "lte=31ms"}));
  CHECK(all_out.out.find("no member meets it") != std::string::npos);
  CHECK(all_out.out.find("bypass: no usable link") != std::string::npos);

  // A strategy without a class: what was measured, no in or out.
  std::ofstream(file) << voice_mapping("    strategy: best-quality\n");
  auto bq = test::clovisctl(args({"--latency", "cable=12ms"}));
  CHECK(bq.out.find("steer via cable") != std::string::npos);
  CHECK(bq.out.find("  latency 12 ms, jitter 0 ms, loss 0%") != std::string::npos);
  CHECK(bq.out.find("in: ") == std::string::npos);
  CHECK(bq.out.find("strategy  best-quality: the best measured link first") != std::string::npos);

  auto bad = test::clovisctl(args({"--latency", "fibre=182ms"}));
  CHECK(bad.code != 0);
  CHECK(bad.err.find("--latency: no link 'fibre'") != std::string::npos);
  bad = test::clovisctl(args({"--loss", "fiber=lots"}));
  CHECK(bad.code != 0);
  CHECK(bad.err.find("'lots' is not a loss value") != std::string::npos);
}

// What simulate says is what the agent programs: for random qualities, the
// kernel's policies (as the fake dataplane received them) pick, for random
// flows, the link the classifier with those qualities explains.
TEST_CASE("sla: the agent programs what simulate explains (differential)") {
  test::TempDir dir("sla-agent");
  test::FakeDataplane dp;
  test::FakeHost host;
  host.set_interface("wan0", {4, true, core::IpAddr::parse("192.0.2.2"), std::nullopt});
  host.set_interface("wan1", {5, true, core::IpAddr::parse("198.51.100.2"), std::nullopt});
  host.set_interface("wan2", {6, true, core::IpAddr::parse("203.0.113.2"), std::nullopt});
  agent::Agent a(agent::AgentOptions{dir.path + "/state", 10000}, dp, host);
  const std::string yaml = voice_mapping("    sla: voice\n    strategy: best-quality\n    fallback: best-of-worst\n");
  REQUIRE(a.apply(yaml, "wan.yaml"));
  const auto running = a.running();
  CHECK(dp.applies() == 1);

  // Unchanged standing: nothing is written again.
  REQUIRE(a.set_quality(core::LinkQualities{}));
  CHECK(dp.applies() == 1);

  const auto seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> lat(5, 300), jit(0, 60), loss(0, 4);
  const core::Classifier explain(*running);
  int rewrites = 0;
  for (int round = 0; round < 60; ++round) {
    core::LinkQualities q{};
    for (const auto* l : {"fiber", "cable", "lte"})
      if (rng() % 5) q[static_cast<size_t>(running->link_slot(l))] = measured(lat(rng), jit(rng), loss(rng));
    const int before = dp.applies();
    REQUIRE(a.set_quality(q));
    rewrites += dp.applies() - before;
    core::CompiledRules kernel = *running;
    kernel.policies = dp.policies();
    const core::Classifier programmed(kernel);
    clv_link_state st = running->all_up_state();
    if (rng() % 3 == 0) st.up &= ~(1ull << (rng() % 3));
    for (int f = 0; f < 20; ++f) {
      core::FlowQuery fq;
      fq.tuple.family = CLV_AF_INET;
      fq.tuple.src[0] = static_cast<uint32_t>(rng());
      fq.tuple.dst[0] = core::IpAddr::parse("192.0.2.200")->words()[0];
      fq.tuple.proto = 17;
      fq.tuple.sport = static_cast<uint16_t>(rng());
      fq.tuple.dport = 5060;
      const auto want = explain.decide(fq, st, q, a.sla_held_out());
      const auto got = programmed.decide(fq, st);
      REQUIRE(want.sla_applied);
      CHECK(got.verdict == want.verdict);
      CHECK(got.link == want.link);
    }
  }
  CHECK(rewrites > 0);  // the qualities did move the policy
}

TEST_CASE("Simulate against clovisd: the measured qualities, what-if values over them") {
  service_test::Api api;
  api.apply_ok(voice_mapping("    sla: voice\n"));
  const auto running = api.agent->running();
  core::LinkQualities q{};
  q[static_cast<size_t>(running->link_slot("fiber"))] = measured(200, 2, 0);
  REQUIRE(api.agent->set_quality(q));
  v1::SimulateRequest req;
  req.set_src("10.0.0.5");
  req.set_dst("192.0.2.200");
  req.set_proto("udp");
  req.set_dport(5060);
  v1::SimulateResponse resp;
  REQUIRE(api.call(&v1::Agent::Stub::Simulate, req, &resp).ok());
  auto doc = nlohmann::json::parse(resp.decision_json());
  CHECK(doc["link"]["name"] == "cable");
  CHECK(doc["members"][0]["sla"]["why"] == "latency 200 ms > voice 150 ms");
  CHECK(doc["members"][1]["sla"]["measured"] == false);
  // The kernel was given the policy simulate explains: cable first.
  const auto kernel = api.dp.policies();
  const int voice = running->policy_index("voice");
  CHECK(kernel[voice].members[1].tier == 1);

  (*req.mutable_latency_ms())["fiber"] = 20;
  (*req.mutable_loss_pct())["cable"] = 3;
  REQUIRE(api.call(&v1::Agent::Stub::Simulate, req, &resp).ok());
  doc = nlohmann::json::parse(resp.decision_json());
  CHECK(doc["link"]["name"] == "fiber");
  CHECK(doc["members"][0]["sla"]["latency_ms"] == 20.0);
  CHECK(doc["members"][0]["sla"]["jitter_ms"] == 2.0);  // measured, kept
  CHECK(doc["members"][1]["sla"]["why"] == "loss 3% > voice 1%");
  CHECK(api.agent->quality()[static_cast<size_t>(running->link_slot("fiber"))].latency_ms == 200);  // unchanged

  (*req.mutable_loss_pct())["fibre"] = 1;
  auto st = api.call(&v1::Agent::Stub::Simulate, req, &resp);
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message() == "loss: no link 'fibre' in the running mapping");
  req.mutable_loss_pct()->erase("fibre");
  (*req.mutable_loss_pct())["cable"] = 300;
  st = api.call(&v1::Agent::Stub::Simulate, req, &resp);
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_CASE("sla: measurements stay with their link across an apply, not with its slot") {
  test::TempDir dir("sla-slots");
  test::FakeDataplane dp;
  test::FakeHost host;
  host.set_interface("wan0", {4, true, core::IpAddr::parse("192.0.2.2"), std::nullopt});
  host.set_interface("wan1", {5, true, core::IpAddr::parse("198.51.100.2"), std::nullopt});
  agent::Agent a(agent::AgentOptions{dir.path + "/state", 10000}, dp, host);
  const std::string yaml = voice_mapping("    sla: voice\n");
  REQUIRE(a.apply(yaml, "wan.yaml"));
  const auto first = a.running();
  const auto fiber = static_cast<size_t>(first->link_slot("fiber")),
             cable = static_cast<size_t>(first->link_slot("cable"));
  core::LinkQualities q{};
  q[fiber] = measured(200, 2, 0);
  q[cable] = measured(20, 2, 0);
  REQUIRE(a.set_quality(q));
  // fiber goes; its slot's measurement must not be some later link's.
  std::string without = yaml;
  auto at = without.find("  - name: fiber");
  without.erase(at, without.find("  - name: cable") - at);
  auto edit = [&](const std::string& from, const std::string& to) {
    const auto i = without.find(from);
    REQUIRE(i != std::string::npos);
    without.replace(i, from.size(), to);
  };
  edit("failover: [fiber, cable, lte]", "failover: [cable, lte]");
  edit("members: [fiber, cable]", "members: [cable]");
  auto r = a.apply(without, "wan.yaml");
  INFO((r ? std::string() : r.error().items()[0].message));
  REQUIRE(r);
  CHECK_FALSE(a.quality()[fiber].measured);
  CHECK(a.quality()[cable].measured);
  CHECK(a.quality()[cable].latency_ms == 20);
}
