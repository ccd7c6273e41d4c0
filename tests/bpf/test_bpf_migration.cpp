// Upgrades keep connections: flow and NAT maps pinned by an ABI 1 clovisd
// (made here with exactly its definitions) are adopted by BpfDataplane::open
// and every flow and NAT binding lands in the right ABI 2 table; so does a
// migration resumed after a crash; an unknown layout is refused saying why;
// an ABI 2 pin directory is re-used as it is.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "kernel/bpf_dataplane.hpp"
#include "kernel/map_migration.hpp"
#include "netns_guard.hpp"

using namespace clovis;
using agent::kernel::BpfDataplane;
using agent::kernel::FlowAbi1;
using agent::kernel::kFlowAbi1Size;

namespace {

constexpr uint32_t kV1Size = 1024;  // the old table's size, adopted over --flow-table-size

// A per-test pin directory, removed with everything in it.
struct PinDir {
  std::string path;
  PinDir() {
    static int n = 0;
    path = "/sys/fs/bpf/clovis-test-migrate-" + std::to_string(getpid()) + "-" + std::to_string(n++);
    std::filesystem::create_directories(path + "/maps");
  }
  ~PinDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string map(const std::string& name) const { return path + "/maps/" + name; }
};

struct Flow {
  clv_flow_key key;
  FlowAbi1 v1;
  bool assured;
};
struct Binding {
  clv_nat_key key;
  clv_flow_key owner;
  bool assured;
};

clv_flow_key flow_key(uint8_t proto, uint8_t host, uint16_t sport, uint16_t dport) {
  clv_flow_key k{};
  k.family = CLV_AF_INET;
  k.proto = proto;
  k.src[0] = htonl(0x0a000000u | host);
  k.dst[0] = htonl(0xc6336401u);
  k.sport = sport;
  k.dport = dport;
  return k;
}

FlowAbi1 v1_value(uint64_t pkts_in, uint8_t flags, uint8_t mode, uint16_t nat_port, uint32_t seed) {
  FlowAbi1 v{};
  for (size_t i = 0; i < kFlowAbi1Size; ++i) v.bytes[i] = static_cast<uint8_t>(seed * 31 + i);  // every byte told apart
  clv_flow f{};
  std::memcpy(&f, v.bytes, kFlowAbi1Size);
  f.pkts_in = pkts_in;
  f.flags = flags;
  f.mode = mode;
  f.nat_port = nat_port;
  std::memset(f.nat_addr, 0, sizeof f.nat_addr);
  f.nat_addr[0] = htonl(0xc0000202u);
  std::memcpy(v.bytes, &f, kFlowAbi1Size);
  return v;
}

clv_nat_key nat_of(const Flow& f) {
  clv_flow fl{};
  std::memcpy(&fl, f.v1.bytes, kFlowAbi1Size);
  auto nk = agent::kernel::nat_key_of(f.key, fl);
  REQUIRE(nk);
  return *nk;
}

// What an ABI 1 site holds: a translated TCP connection (replied), a
// translated UDP flow never replied to, a route-mode flow, an ICMP echo, and a
// NAT binding left behind by a flow that is gone.
struct Site {
  std::vector<Flow> flows;
  std::vector<Binding> nat;
  clv_nat_key orphan{};
  Site() {
    flows.push_back({flow_key(6, 1, 40001, 443), v1_value(12, CLV_FLOW_NAT, CLV_MODE_REDIRECT, 40001, 1), true});
    flows.push_back({flow_key(17, 2, 5353, 53), v1_value(0, CLV_FLOW_NAT, CLV_MODE_REDIRECT, 33000, 2), false});
    flows.push_back({flow_key(6, 3, 5000, 80), v1_value(4, 0, CLV_MODE_ROUTE, 0, 3), true});
    flows.push_back({flow_key(1, 4, 77, 0), v1_value(1, CLV_FLOW_NAT, CLV_MODE_REDIRECT, 77, 4), true});
    for (const Flow& f : flows)
      if (f.v1.bytes[offsetof(clv_flow, flags)] & CLV_FLOW_NAT) nat.push_back({nat_of(f), f.key, f.assured});
    orphan = nat[0].key;
    orphan.local_port = 45000;
  }
};

// Makes clv_flows and clv_nat with their ABI 1 definitions, filled, pinned
// under `as` (their name, or the name with _v1).
void pin_v1(const PinDir& d, const Site& s, const std::string& suffix = "") {
  int flows = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "clv_flows", sizeof(clv_flow_key), kFlowAbi1Size, kV1Size, nullptr);
  int nat =
      bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "clv_nat", sizeof(clv_nat_key), sizeof(clv_flow_key), kV1Size, nullptr);
  REQUIRE(flows >= 0);
  REQUIRE(nat >= 0);
  for (const Flow& f : s.flows) REQUIRE(bpf_map_update_elem(flows, &f.key, f.v1.bytes, BPF_NOEXIST) == 0);
  for (const Binding& b : s.nat) REQUIRE(bpf_map_update_elem(nat, &b.key, &b.owner, BPF_NOEXIST) == 0);
  const clv_flow_key nobody = flow_key(6, 99, 1, 2);
  REQUIRE(bpf_map_update_elem(nat, &s.orphan, &nobody, BPF_NOEXIST) == 0);
  REQUIRE(bpf_obj_pin(flows, d.map("clv_flows" + suffix).c_str()) == 0);
  REQUIRE(bpf_obj_pin(nat, d.map("clv_nat" + suffix).c_str()) == 0);
  close(flows);
  close(nat);
}

int pinned(const PinDir& d, const std::string& name) {
  int fd = bpf_obj_get(d.map(name).c_str());
  REQUIRE_MESSAGE(fd >= 0, name);
  return fd;
}

template <typename K>
size_t count(int fd) {
  size_t n = 0;
  K k{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) ++n, k = next, prev = &k;
  return n;
}

bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

// Every flow with its 88 old bytes in the table its assurance says, every
// binding beside its flow, nothing else.
void check_migrated(const PinDir& d, const Site& s, const std::vector<Flow>& extra = {}) {
  int flows = pinned(d, "clv_flows"), flows_new = pinned(d, "clv_flows_new");
  int nat = pinned(d, "clv_nat"), nat_new = pinned(d, "clv_nat_new");
  std::vector<Flow> all = s.flows;
  all.insert(all.end(), extra.begin(), extra.end());
  size_t assured = 0;
  for (const Flow& f : all) {
    clv_flow got{};
    CAPTURE(f.key.proto);
    REQUIRE(bpf_map_lookup_elem(f.assured ? flows : flows_new, &f.key, &got) == 0);
    CHECK(bpf_map_lookup_elem(f.assured ? flows_new : flows, &f.key, &got) != 0);
    CHECK(std::memcmp(&got, f.v1.bytes, kFlowAbi1Size) == 0);
    CHECK(got.state == (f.assured ? CLV_CT_ESTABLISHED : CLV_CT_NEW));
    CHECK(got.ct_flags == (f.assured ? CLV_CT_ASSURED : 0));
    assured += f.assured;
  }
  CHECK(count<clv_flow_key>(flows) == assured);
  CHECK(count<clv_flow_key>(flows_new) == all.size() - assured);
  size_t nat_assured = 0;
  for (const Binding& b : s.nat) {
    clv_flow_key owner{};
    CAPTURE(b.owner.proto);
    REQUIRE(bpf_map_lookup_elem(b.assured ? nat : nat_new, &b.key, &owner) == 0);
    CHECK(std::memcmp(&owner, &b.owner, sizeof owner) == 0);
    nat_assured += b.assured;
  }
  clv_flow_key owner{};
  CHECK(bpf_map_lookup_elem(nat, &s.orphan, &owner) != 0);
  CHECK(bpf_map_lookup_elem(nat_new, &s.orphan, &owner) != 0);
  CHECK(count<clv_nat_key>(nat) == nat_assured);
  CHECK(count<clv_nat_key>(nat_new) == s.nat.size() - nat_assured);
  for (int fd : {flows, flows_new, nat, nat_new}) close(fd);
}

std::unique_ptr<BpfDataplane> open_at(const PinDir& d) {
  agent::kernel::BpfOptions o;
  o.pin_dir = d.path;
  o.flow_table_size = 4096;
  auto dp = BpfDataplane::open(o);
  REQUIRE_MESSAGE(dp, (dp ? "" : dp.error().what()));
  return std::move(dp.value());
}

}  // namespace

TEST_CASE("kernel: an ABI 1 flow and NAT table is migrated; flows the old program adds until attach follow") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  REQUIRE(agent::kernel::ensure_bpffs());
  PinDir d;
  Site s;
  pin_v1(d, s);
  int old_flows = pinned(d, "clv_flows");  // as the old program holds it
  auto dp = open_at(d);
  CHECK(dp->options().flow_table_size == kV1Size);
  CHECK(exists(d.map("clv_flows_v1")));
  CHECK(exists(d.map("clv_nat_v1")));
  check_migrated(d, s);
  // The old program, still attached, sees a new connection reply.
  const Flow late{flow_key(6, 5, 40005, 443), v1_value(2, 0, CLV_MODE_ROUTE, 0, 5), true};
  REQUIRE(bpf_map_update_elem(old_flows, &late.key, late.v1.bytes, BPF_NOEXIST) == 0);
  close(old_flows);
  REQUIRE(dp->finish_migration());
  check_migrated(d, s, {late});
  CHECK_FALSE(exists(d.map("clv_flows_v1")));
  CHECK_FALSE(exists(d.map("clv_nat_v1")));
  dp.reset();
  // The next start finds ABI 2 pins only: they are re-used as they are.
  auto again = open_at(d);
  check_migrated(d, s, {late});
}

TEST_CASE("kernel: a migration interrupted after renaming, with the new tables half written, ends the same") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  REQUIRE(agent::kernel::ensure_bpffs());
  SUBCASE("crash between the two renames, before load") {
    PinDir d;
    Site s;
    pin_v1(d, s);
    REQUIRE(rename(d.map("clv_flows").c_str(), d.map("clv_flows_v1").c_str()) == 0);
    auto dp = open_at(d);
    REQUIRE(dp->finish_migration());
    check_migrated(d, s);
  }
  SUBCASE("crash during the copy") {
    PinDir d;
    Site s;
    pin_v1(d, s);
    open_at(d).reset();  // renamed and copied, never finished
    REQUIRE(exists(d.map("clv_flows_v1")));
    // Half the copy undone: the first flow and the first binding missing.
    int flows = pinned(d, "clv_flows"), nat = pinned(d, "clv_nat");
    REQUIRE(bpf_map_delete_elem(flows, &s.flows[0].key) == 0);
    REQUIRE(bpf_map_delete_elem(nat, &s.nat[0].key) == 0);
    close(flows);
    close(nat);
    auto dp = open_at(d);
    check_migrated(d, s);
    REQUIRE(dp->finish_migration());
    check_migrated(d, s);
    CHECK_FALSE(exists(d.map("clv_flows_v1")));
  }
}

TEST_CASE("kernel: a pinned flow table of an unknown layout is refused, saying what differs, and left as it was") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  REQUIRE(agent::kernel::ensure_bpffs());
  PinDir d;
  int fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "clv_flows", sizeof(clv_flow_key), 104, kV1Size, nullptr);
  REQUIRE(fd >= 0);
  REQUIRE(bpf_obj_pin(fd, d.map("clv_flows").c_str()) == 0);
  close(fd);
  agent::kernel::BpfOptions o;
  o.pin_dir = d.path;
  auto dp = BpfDataplane::open(o);
  REQUIRE_FALSE(dp);
  const std::string why = dp.error().what();
  CAPTURE(why);
  CHECK(why.find(d.map("clv_flows")) != std::string::npos);
  CHECK(why.find("type LRU_HASH, this clovisd wants HASH") != std::string::npos);
  CHECK(why.find("value 104 bytes, wants 96") != std::string::npos);
  CHECK(why.find("clovisd --uninstall") != std::string::npos);
  CHECK(exists(d.map("clv_flows")));
  CHECK_FALSE(exists(d.map("clv_flows_v1")));
}

TEST_CASE("kernel: ABI 2 pins are re-used with nothing migrated") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  REQUIRE(agent::kernel::ensure_bpffs());
  PinDir d;
  auto dp = open_at(d);
  const clv_flow_key k = flow_key(6, 7, 1234, 443);
  clv_flow f{};
  f.pkts_in = 9;
  f.state = CLV_CT_ESTABLISHED;
  f.ct_flags = CLV_CT_ASSURED;
  REQUIRE(bpf_map_update_elem(dp->flows_fd(), &k, &f, BPF_NOEXIST) == 0);
  bpf_map_info before{};
  uint32_t len = sizeof before;
  REQUIRE(bpf_obj_get_info_by_fd(dp->flows_fd(), &before, &len) == 0);
  dp.reset();
  auto again = open_at(d);
  bpf_map_info after{};
  len = sizeof after;
  REQUIRE(bpf_obj_get_info_by_fd(again->flows_fd(), &after, &len) == 0);
  CHECK(after.id == before.id);  // the same map, not a copy
  CHECK(after.max_entries == 4096);
  clv_flow back{};
  REQUIRE(bpf_map_lookup_elem(again->flows_fd(), &k, &back) == 0);
  CHECK(std::memcmp(&back, &f, sizeof f) == 0);
  CHECK_FALSE(exists(d.map("clv_flows_v1")));
  REQUIRE(again->finish_migration());
}
