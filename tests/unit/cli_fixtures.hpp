// Hand-built API responses and small helpers shared by the clovisctl tests
// (offline renderings in test_cli_client.cpp, live runs in test_cli_live.cpp).
#pragma once

#include <tuple>

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "clovis/v1/agent.pb.h"

namespace clovis::test::cli_fixtures {

using nlohmann::json;

// 2026-11-21T10:00:00Z: renderings with relative times are golden against it.
constexpr int64_t kNow = 1795255200000;

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

inline v1::Link make_link(const char* name, const char* iface, const char* mode, const char* state, uint32_t slot) {
  v1::Link l;
  l.set_name(name);
  l.set_interface(iface);
  l.set_slot(slot);
  l.set_mode(mode);
  l.set_state(state);
  l.set_since_unix_ms(kNow - 192000 * (slot + 1));
  l.add_labels("wan");
  l.set_tx_packets(1234567 * (slot + 1));
  l.set_tx_bytes(1536000000ull * (slot + 1));
  l.set_rx_packets(345678);
  l.set_rx_bytes(524288000);
  l.set_flows(12 + slot);
  l.set_new_flows(120);
  l.set_migrated(slot);
  l.set_tx_pps(1234.5);
  l.set_tx_bps(12288.0 * (slot + 1));
  l.set_rx_pps(999);
  l.set_rx_bps(1048576);
  return l;
}

inline google::protobuf::RepeatedPtrField<v1::Link> make_links() {
  google::protobuf::RepeatedPtrField<v1::Link> links;
  v1::Link mpls = make_link("mpls", "wan0", "route", "up", 0);
  mpls.set_reason("3 probe rounds answered");
  mpls.set_latency_ms(4.25);
  mpls.set_jitter_ms(0.5);
  mpls.set_measured(true);
  mpls.set_transitions(2);
  *links.Add() = mpls;
  v1::Link bb = make_link("broadband", "wan1", "redirect", "degraded", 1);
  bb.set_reason("latency 182.4 ms over 150 ms");
  bb.set_latency_ms(182.4);
  bb.set_jitter_ms(23.75);
  bb.set_loss_pct(2.5);
  bb.set_measured(true);
  bb.set_transitions(1);
  *links.Add() = bb;
  v1::Link lte = make_link("lte", "wwan0", "redirect", "down", 2);
  lte.set_since_unix_ms(0);
  lte.clear_labels();
  lte.set_reason("carrier down");
  lte.set_loss_pct(100);
  *links.Add() = lte;
  return links;
}

inline v1::Flow make_flow(const char* src, uint32_t sport, const char* dst, uint32_t dport, const char* proto,
                          const char* link, uint64_t bytes) {
  v1::Flow f;
  f.set_family(std::string(src).find(':') == std::string::npos ? "ipv4" : "ipv6");
  f.set_src(src);
  f.set_dst(dst);
  f.set_sport(sport);
  f.set_dport(dport);
  f.set_proto(proto);
  f.set_action(*link ? "steer" : "bypass");
  f.set_rule(*link ? "voice" : "");
  f.set_link(link);
  f.set_generation(7);
  f.set_state(std::string(proto) == "tcp" ? "established" : "replied");
  f.set_assured(true);
  f.set_packets_out(bytes / 1000);
  f.set_bytes_out(bytes);
  f.set_packets_in(bytes / 2000);
  f.set_bytes_in(bytes / 2);
  f.set_age_s(125.5);
  f.set_idle_s(0.25);
  return f;
}

inline google::protobuf::RepeatedPtrField<v1::Flow> make_flows() {
  google::protobuf::RepeatedPtrField<v1::Flow> flows;
  *flows.Add() = make_flow("10.1.0.7", 5060, "192.0.2.200", 5061, "udp", "mpls", 2400000);
  v1::Flow nat = make_flow("10.1.0.5", 40000, "198.51.100.10", 8000, "tcp", "broadband", 73400320);
  nat.add_flags("nat");
  nat.set_nat("198.18.0.2:40000");
  *flows.Add() = nat;
  v1::Flow opening = make_flow("2001:db8:5::1", 51000, "2001:db8:100::9", 443, "tcp", "", 900);
  opening.set_state("syn-sent");
  opening.set_assured(false);
  *flows.Add() = opening;
  v1::Flow ping = make_flow("10.1.0.9", 0, "8.8.8.8", 0, "icmp", "mpls", 840);
  ping.set_state("unreplied");
  ping.set_assured(false);
  *flows.Add() = ping;
  // A connection a proxy reported over ext_authz, with what it said.
  v1::Flow proxied = make_flow("10.1.0.12", 41000, "203.0.113.10", 8000, "tcp", "broadband", 51200);
  proxied.set_rule("minions-video");
  proxied.add_flags("proxy");
  proxied.set_state("fin-wait");  // closing: still assured
  v1::FlowL7* l7 = proxied.mutable_l7();
  l7->set_rule("minions-video");
  l7->set_by_l7(true);
  l7->set_host("video.example.com:8000");
  l7->set_method("GET");
  l7->set_path("/stream");
  (*l7->mutable_headers())["end-user"] = "minions";
  l7->set_checks(3);
  l7->set_seen_s(1.5);
  *flows.Add() = proxied;
  return flows;
}

inline google::protobuf::RepeatedPtrField<v1::LinkEventMsg> make_events() {
  google::protobuf::RepeatedPtrField<v1::LinkEventMsg> events;
  auto add = [&](int64_t ago_ms, const char* link, const char* from, const char* to, const char* why, double lat,
                 double jit, double loss) {
    auto* e = events.Add();
    e->set_time_unix_ms(kNow - ago_ms);
    e->set_link(link);
    e->set_from(from);
    e->set_to(to);
    e->set_reason(why);
    e->set_latency_ms(lat);
    e->set_jitter_ms(jit);
    e->set_loss_pct(loss);
  };
  add(3723000, "lte", "up", "down", "carrier down", 0, 0, 100);
  add(192500, "broadband", "up", "degraded", "latency 182.4 ms over 150 ms", 182.4, 23.75, 2.5);
  add(4000, "mpls", "down", "up", "3 probe rounds answered", 4.25, 0.5, 0);
  add(2000, "broadband", "", "flows leave",
      "policy voice: live flows leave broadband (out of SLA): latency 182 ms > voice 150 ms", 0, 0, 0);
  events.rbegin()->set_kind("steering");
  return events;
}

inline v1::ApplyResponse make_apply_response() {
  v1::ApplyResponse r;
  r.set_generation(8);
  r.set_previous_generation(7);
  r.set_apply_ms(3.25);
  auto item = [&](const char* kind, const char* name, const char* change, const char* detail) {
    auto* d = r.add_diff();
    d->set_kind(kind);
    d->set_name(name);
    d->set_change(change);
    d->set_detail(detail);
  };
  item("link", "lte", "added", "");
  item("link", "broadband", "changed", "gateway 198.18.0.1 -> 198.18.0.9");
  item("policy", "bulk", "removed", "");
  item("rule", "voice", "changed", "match.dport 5060 -> 5060-5061");
  item("default", "", "changed", "policy bulk -> policy low-latency");
  r.set_diff_total(5);
  for (auto [kind, added, removed, changed] :
       {std::tuple{"link", 1, 0, 1}, {"policy", 0, 1, 0}, {"rule", 0, 0, 1}, {"default", 0, 0, 1}}) {
    auto* c = r.add_diff_counts();
    c->set_kind(kind);
    c->set_added(static_cast<uint32_t>(added));
    c->set_removed(static_cast<uint32_t>(removed));
    c->set_changed(static_cast<uint32_t>(changed));
  }
  auto* w = r.add_warnings();
  w->set_severity(v1::SEVERITY_WARNING);
  w->set_file("wan.yaml");
  w->set_line(40);
  w->set_col(5);
  w->set_path("rules[2]");
  w->set_message("rule 'old' can never match: rule 'voice' (priority 30) matches everything it does");
  w->set_hint("remove it or give it a lower priority number");
  r.add_notes("interface wwan0 does not exist yet; link lte stays down until it appears");
  return r;
}

}  // namespace clovis::test::cli_fixtures
