// clovisctl as a user runs it: exit codes, messages, and golden JSON outputs
// (CLOVIS_UPDATE_GOLDEN=1 rewrites the golden files after a deliberate change).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "app.hpp"
#include "cli_run.hpp"
#include "exit_codes.hpp"
#include "helpers.hpp"
#include "render/events.hpp"
#include "render/links.hpp"

using namespace clovis;
using test::clovisctl;
using test::golden;
using test::Run;

namespace {

const std::string kExample = test::source_path("examples/edge-site.yaml");

}  // namespace

TEST_CASE("validate: exit codes and messages") {
  auto ok = clovisctl({"validate", "-f", kExample});
  CHECK(ok.code == cli::kExitOk);
  CHECK(ok.out.find("ok: 3 links, 3 policies, 6 rules (2 L7)") != std::string::npos);
  CHECK(ok.out.find("proxy:") == std::string::npos);  // on-drop: allow, the default, goes unsaid
  {
    std::ifstream in(kExample);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t at = text.find("on-drop: allow");
    REQUIRE(at != std::string::npos);
    text.replace(at, 14, "on-drop: deny");
    const std::string deny = "/tmp/clovis-unit-deny-" + std::to_string(getpid()) + ".yaml";
    std::ofstream(deny) << text;
    auto d = clovisctl({"validate", "-f", deny});
    std::remove(deny.c_str());
    CHECK(d.code == cli::kExitOk);
    CHECK(d.out.find("; proxy: drop verdicts denied (403)") != std::string::npos);
  }
  auto quiet = clovisctl({"validate", "-q", "-f", kExample});
  CHECK(quiet.out.empty());
  auto missing = clovisctl({"validate", "-f", "/nonexistent/wan.yaml"});
  CHECK(missing.code == cli::kExitIo);
  CHECK(missing.err.find("cannot read mapping /nonexistent/wan.yaml: No such file or directory") != std::string::npos);
  auto usage = clovisctl({"validate"});
  CHECK(usage.code == cli::kExitUsage);
  CHECK(usage.err.find("a mapping file is required: give it as FILE (or -f FILE") != std::string::npos);
  CHECK(usage.err.find("Run 'clovisctl validate --help' for usage.") != std::string::npos);
  auto bad_o = clovisctl({"validate", "-f", kExample, "-o", "xml"});
  CHECK(bad_o.code == cli::kExitUsage);
  auto help = clovisctl({"--help"});
  CHECK(help.code == cli::kExitOk);
  CHECK(help.out.find("simulate") != std::string::npos);
}

TEST_CASE("validate: a broken mapping is rejected with located errors") {
  const std::string path = "/tmp/clovis-unit-broken.yaml";
  std::ofstream(path) << "version: 1\nlinks:\n  - name: a\n    interface: wan0\n    gatway: 192.0.2.1\n";
  auto r = clovisctl({"validate", "-f", path});
  CHECK(r.code == cli::kExitInvalid);
  CHECK(r.err.find(path + ":5:5: error: unknown key 'gatway' [links[0].gatway]\n  hint: did you mean 'gateway'?") !=
        std::string::npos);
  CHECK(r.err.find("rejected (") != std::string::npos);
  auto j = clovisctl({"validate", "-f", path, "-o", "json"});
  CHECK(j.code == cli::kExitInvalid);
  auto doc = nlohmann::json::parse(j.out);
  CHECK(doc["ok"] == false);
  CHECK(doc["diagnostics"][0]["line"] == 5);
  CHECK(doc["diagnostics"][0]["col"] == 5);
  std::remove(path.c_str());
}

TEST_CASE("golden: validate -o json") {
  auto r = clovisctl({"validate", "-f", "examples/edge-site.yaml", "-o", "json"});
  // Relative path so the golden file does not depend on the checkout location.
  if (r.code == cli::kExitIo) {
    r = clovisctl({"validate", "-f", kExample, "-o", "json"});
    auto doc = nlohmann::json::parse(r.out);
    doc["file"] = "examples/edge-site.yaml";
    for (auto& d : doc["diagnostics"]) d["file"] = "examples/edge-site.yaml";
    r.out = doc.dump(2) + "\n";
  }
  CHECK(r.code == cli::kExitOk);
  golden("validate-edge-site.json", r.out);
}

TEST_CASE("golden: simulate -o json") {
  struct Case {
    std::string name;
    std::vector<std::string> args;
  };
  const std::vector<Case> cases = {
      {"simulate-minions.json",
       {"--src", "10.1.0.5", "--dst", "198.51.100.10", "--sport", "40000", "--dport", "8000", "--host",
        "video.example.com", "--header", "end-user=minions"}},
      {"simulate-boss-mpls-down.json",
       {"--src", "10.1.0.5", "--dst", "198.51.100.10", "--sport", "40000", "--dport", "8000", "--host",
        "video.example.com", "--header", "end-user=boss", "--down", "mpls"}},
      {"simulate-voice.json",
       {"--src", "10.1.0.7", "--dst", "192.0.2.200", "--proto", "udp", "--sport", "5060", "--dport", "5061", "--dscp",
        "ef", "--degraded", "mpls"}},
      {"simulate-default-v6.json", {"--src", "2001:db8:5::1", "--dst", "2001:db8:100::9", "--dport", "443"}},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"simulate", "-f", kExample, "-o", "json"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = clovisctl(args);
    INFO(c.name << ": " << r.err);
    CHECK(r.code == cli::kExitOk);
    golden(c.name, r.out);
  }
}

TEST_CASE("simulate: argument errors name the argument") {
  auto r = clovisctl({"simulate", "-f", kExample, "--src", "10.0.0.1", "--dst", "nowhere"});
  CHECK(r.code == cli::kExitUsage);
  CHECK(r.err.find("--dst 'nowhere' is not an IP address") != std::string::npos);
  r = clovisctl({"simulate", "-f", kExample, "--src", "10.0.0.1", "--dst", "::1"});
  CHECK(r.err.find("same address family") != std::string::npos);
  r = clovisctl({"simulate", "-f", kExample, "--src", "10.0.0.1", "--dst", "10.0.0.2", "--down", "mplz"});
  CHECK(r.code == cli::kExitUsage);
  CHECK(r.err.find("no link 'mplz'") != std::string::npos);
  r = clovisctl({"simulate", "-f", kExample, "--src", "10.0.0.1", "--dst", "10.0.0.2", "--header", "novalue"});
  CHECK(r.err.find("is not NAME=VALUE") != std::string::npos);
  r = clovisctl({"simulate", "-f", kExample, "--src", "10.0.0.1", "--dst", "10.0.0.2", "--dport", "70000"});
  CHECK(r.code == cli::kExitUsage);
}

TEST_CASE("simulate: the text view explains the decision") {
  auto r = clovisctl({"simulate", "-f", kExample, "--src", "10.1.20.5", "--dst", "203.0.113.9", "--dport", "22",
                      "--down", "broadband", "-o", "wide"});
  CHECK(r.code == cli::kExitOk);
  CHECK(r.out.find("verdict  steer via mpls (interface wan0, route: mark 0x100 table 100)") != std::string::npos);
  CHECK(r.out.find("rule     backups (priority 40)") != std::string::npos);
  CHECK(r.out.find("skipped: link is down") != std::string::npos);
  CHECK(r.out.find("lookup: probed") != std::string::npos);
}

TEST_CASE("simulate: a request the data path would drop says what the proxy is answered") {
  const std::string path = "/tmp/clovis-unit-on-drop-" + std::to_string(::getpid()) + ".yaml";
  const std::string mapping = R"(version: 1
links:
  - {name: a, interface: wan0, gateway: 192.0.2.1}
rules:
  - {name: blocked, priority: 10, match: {headers: {end-user: mallory}}, action: drop}
default: {link: a}
)";
  auto simulate = [&](const std::string& text, const std::vector<std::string>& extra) {
    std::ofstream(path) << text;
    std::vector<std::string> args = {"simulate",      "-f",      path,  "--src", "10.1.0.5", "--dst",
                                     "198.51.100.10", "--dport", "8000"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = clovisctl(args);
    INFO(r.err);
    CHECK(r.code == cli::kExitOk);
    return r.out;
  };
  const std::vector<std::string> mallory = {"--header", "end-user=mallory"};
  auto json = [&](const std::string& text, std::vector<std::string> extra) {
    extra.insert(extra.end(), {"-o", "json"});
    return nlohmann::json::parse(simulate(text, extra));
  };

  const std::string deny = mapping + "proxy: {on-drop: deny}\n";
  auto text = simulate(deny, mallory);
  CHECK(text.find("verdict  drop") != std::string::npos);
  CHECK(text.find("proxy    denies it: PERMISSION_DENIED, the client gets 403 (proxy on-drop: deny)") !=
        std::string::npos);
  CHECK(json(deny, mallory)["proxy_answer"] == "denied");

  text = simulate(mapping, mallory);
  CHECK(text.find("proxy    answers OK: the request goes on, unsteered (proxy on-drop: allow, fail-open)") !=
        std::string::npos);
  CHECK(json(mapping, mallory)["proxy_answer"] == "ok");

  // Not dropped: the answer is OK and the text does not dwell on it.
  const std::vector<std::string> boss = {"--header", "end-user=boss"};
  CHECK(json(deny, boss)["proxy_answer"] == "ok");
  CHECK(simulate(deny, boss).find("proxy ") == std::string::npos);
  // A packet, not a request: no proxy is asked.
  CHECK(json(deny, {})["proxy_answer"].is_null());
  std::remove(path.c_str());
}

// The usage line reads `clovisctl validate wan.yaml`: the mapping is a
// positional FILE on every command that takes one, -f FILE says the same, and
// giving both is a usage error rather than a silent choice.
TEST_CASE("usage: the mapping file is positional, -f still works, both is an error") {
  auto pos = clovisctl({"validate", kExample});
  CHECK(pos.code == cli::kExitOk);
  CHECK(pos.out == clovisctl({"validate", "-f", kExample}).out);
  CHECK(pos.out == clovisctl({"validate", "--file", kExample}).out);
  CHECK(clovisctl({"validate", kExample, "-o", "json"}).out ==
        clovisctl({"validate", "-o", "json", "-f", kExample}).out);

  auto both = clovisctl({"validate", kExample, "-f", kExample});
  CHECK(both.code == cli::kExitUsage);
  CHECK(both.err.find("the mapping file is given twice") != std::string::npos);
  CHECK(both.err.find("Run 'clovisctl validate --help' for usage.") != std::string::npos);
  CHECK(both.out.empty());

  auto two = clovisctl({"validate", kExample, kExample});
  CHECK(two.code == cli::kExitUsage);

  const std::vector<std::string> flow = {"--src", "10.1.0.7", "--dst", "192.0.2.200", "--proto", "udp", "--dscp", "ef"};
  std::vector<std::string> a = {"simulate", kExample, "-o", "json"}, b = {"simulate", "-o", "json", "-f", kExample};
  a.insert(a.end(), flow.begin(), flow.end());
  b.insert(b.end(), flow.begin(), flow.end());
  auto sa = clovisctl(a), sb = clovisctl(b);
  INFO(sa.err);
  CHECK(sa.code == cli::kExitOk);
  CHECK(sa.out == sb.out);
  CHECK(nlohmann::json::parse(sa.out).contains("link"));
  auto sboth = clovisctl({"simulate", kExample, "-f", kExample, "--src", "10.1.0.7", "--dst", "192.0.2.200"});
  CHECK(sboth.code == cli::kExitUsage);
  CHECK(sboth.err.find("given twice") != std::string::npos);
  // Without a file simulate asks clovisd; --down needs a file to mean anything.
  auto down = clovisctl({"simulate", "--src", "10.1.0.7", "--dst", "192.0.2.200", "--down", "mpls"});
  CHECK(down.code == cli::kExitUsage);
  CHECK(down.err.find("--down and --degraded need a mapping FILE") != std::string::npos);

  auto ea = clovisctl({"envoy", kExample, "--upstream", "api=10.20.0.5:8080"});
  CHECK(ea.code == cli::kExitOk);
  CHECK(ea.out == clovisctl({"envoy", "-f", kExample, "--upstream", "api=10.20.0.5:8080"}).out);
  CHECK(clovisctl({"envoy", kExample, "--file", kExample, "--upstream", "api=10.20.0.5:8080"}).code == cli::kExitUsage);

  auto apply = clovisctl({"apply"});
  CHECK(apply.code == cli::kExitUsage);
  CHECK(apply.err.find("a mapping file is required") != std::string::npos);
  CHECK(clovisctl({"apply", kExample, "-f", kExample}).code == cli::kExitUsage);
  // A positional file gets past parsing to the agent, which is not there.
  CHECK(clovisctl({"apply", kExample}).code == cli::kExitUnavailable);

  auto help = clovisctl({"apply", "--help"});
  CHECK(help.out.find("FILE") != std::string::npos);
}

// CLI11 alone answers `clovisctl logs` and `clovisctl get links` with "A
// subcommand is required", as if nothing had been typed.
TEST_CASE("usage: an unknown command is named, with the commands there are") {
  auto r = clovisctl({"logs"});
  CHECK(r.code == cli::kExitUsage);
  CHECK(r.err.rfind("clovisctl: unknown command 'logs' for 'clovisctl'; the commands are: apply, get, status,", 0) ==
        0);
  CHECK(r.err.find("completion") == std::string::npos);  // hidden
  r = clovisctl({"get", "links"});
  CHECK(r.code == cli::kExitUsage);
  CHECK(r.err ==
        "clovisctl: unknown command 'links' for 'clovisctl get'; the commands are: mapping\n"
        "Run 'clovisctl get --help' for usage.\n");
  r = clovisctl({"get", "mapping", "--bogus"});
  CHECK(r.code == cli::kExitUsage);
  CHECK(r.err.find("Run 'clovisctl get mapping --help' for usage.") != std::string::npos);
  r = clovisctl({});
  CHECK(r.code == cli::kExitUsage);
  CHECK(r.err.find("A subcommand is required") != std::string::npos);
}

TEST_CASE("status and events show the followed config file and the mapping's events") {
  v1::StatusResponse s;
  s.set_generation(6);
  auto* f = s.mutable_config_file();
  f->set_path("/etc/clovis/wan.yaml");
  f->set_hash("0123456789abcdef");
  f->set_result("rejected");
  f->set_error("/etc/clovis/wan.yaml:4:5: error: unknown key 'gatway'");
  f->set_generation(5);
  s.set_auto_rollback_after_s(30);
  std::ostringstream out;
  cli::render::status_text(out, s, "/run/clovis/clovisd.sock", false, 0);
  CHECK(out.str().find("config         /etc/clovis/wan.yaml (rejected), content 0123456789abcdef: "
                       "/etc/clovis/wan.yaml:4:5: error: unknown key 'gatway'; generation 6 runs, not the file's "
                       "generation 5") != std::string::npos);
  CHECK(out.str().find("auto-rollback  armed: rolled back after 30s without a usable link") != std::string::npos);
  const auto j = cli::render::status_json(s, "/run/clovis/clovisd.sock");
  CHECK(j["config_file"]["result"] == "rejected");
  CHECK(j["config_file"]["in_effect"] == false);

  cli::render::Events events;
  auto* e = events.Add();
  e->set_time_unix_ms(1000);
  e->set_kind("config");
  e->set_to("rolled back");
  e->set_reason("auto-rollback: generation 5 left no usable link for 30 s");
  std::ostringstream table;
  cli::render::events_table(table, events, false, 61000);
  CHECK(table.str().find("(mapping)  rolled back") != std::string::npos);
  CHECK(cli::render::event_json(*e)["kind"] == "config");
}
