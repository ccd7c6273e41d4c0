// The proxies' session facts: bounded, least recently reported out first,
// pruned with their flows.
#include <doctest/doctest.h>

#include "telemetry/sessions.hpp"

using clovis::agent::SessionFacts;
using clovis::agent::SessionTable;

namespace {

clv_flow_key key(uint16_t sport) {
  clv_flow_key k{};
  k.src[0] = 0x0a000001;
  k.dst[0] = 0xcb00710a;
  k.sport = sport;
  k.dport = 443;
  k.proto = 6;
  k.family = CLV_AF_INET;
  return k;
}

SessionFacts facts(const std::string& host, uint64_t seen_ns) {
  SessionFacts f;
  f.rule = "r";
  f.host = host;
  f.method = "GET";
  f.path = "/";
  f.seen_ns = seen_ns;
  return f;
}

}  // namespace

TEST_CASE("sessions: at capacity the least recently reported one goes") {
  SessionTable t(2);
  t.record(key(1), facts("a", 10));
  t.record(key(2), facts("b", 20));
  t.record(key(1), facts("a2", 30));  // key 1 is now the most recent
  t.record(key(3), facts("c", 40));   // evicts key 2
  CHECK(t.size() == 2);
  CHECK_FALSE(t.find(key(2)));
  REQUIRE(t.find(key(1)));
  CHECK(t.find(key(1))->host == "a2");
  CHECK(t.find(key(1))->checks == 2);
  CHECK(t.find(key(3))->checks == 1);
}

TEST_CASE("sessions: a zero capacity keeps nothing") {
  SessionTable t(0);
  t.record(key(1), facts("a", 10));
  CHECK(t.size() == 0);
}

TEST_CASE("sessions: what a client sent is kept bounded") {
  SessionTable t(4);
  SessionFacts f = facts(std::string(1000, 'h'), 1);
  f.path = std::string(5000, 'p');
  f.method = std::string(100, 'M');
  f.headers = {{"end-user", std::string(1000, 'v')}};
  t.record(key(1), f);
  auto s = t.find(key(1));
  REQUIRE(s);
  CHECK(s->host.size() == SessionTable::kMaxHost);
  CHECK(s->path.size() == SessionTable::kMaxPath);
  CHECK(s->method.size() == SessionTable::kMaxMethod);
  CHECK(s->headers[0].second.size() == SessionTable::kMaxHeaderValue);
}

TEST_CASE("sessions: prune removes old sessions whose flow is gone, and only those") {
  SessionTable t(8);
  t.record(key(1), facts("gone", 100));
  t.record(key(2), facts("alive", 100));
  t.record(key(3), facts("recent", 900));  // reported after the cut: never asked about
  std::vector<uint16_t> asked;
  size_t n = t.prune(500, [&](const clv_flow_key& k) {
    asked.push_back(k.sport);
    return k.sport == 2;
  });
  CHECK(n == 1);
  CHECK(asked == std::vector<uint16_t>{1, 2});  // oldest first, the recent one not at all
  CHECK_FALSE(t.find(key(1)));
  CHECK(t.find(key(2)));
  CHECK(t.find(key(3)));
  CHECK(t.size() == 2);
}

TEST_CASE("sessions: one reported again while prune asked the kernel stays") {
  SessionTable t(8);
  t.record(key(1), facts("a", 100));
  size_t n = t.prune(500, [&](const clv_flow_key&) {
    t.record(key(1), facts("again", 600));  // a Check races the sweep
    return false;
  });
  CHECK(n == 0);
  REQUIRE(t.find(key(1)));
  CHECK(t.find(key(1))->host == "again");
}
