// Random mappings and flows for the property tests (and later the kernel
// differential test): small address/port universes so that rules overlap and
// flows hit them often.
#pragma once

#include <cstdlib>
#include <random>
#include <string>

#include "core/classifier.hpp"
#include "core/model.hpp"

namespace clovis::test {

inline uint64_t seed_from_env() {
  if (const char* s = std::getenv("CLOVIS_SEED")) return std::strtoull(s, nullptr, 0);
  return std::random_device{}();
}

class RandomMapping {
 public:
  explicit RandomMapping(uint64_t seed) : rng_(seed) {}

  core::Mapping mapping(int n_rules, bool with_l7);
  core::FlowQuery flow(const core::Mapping& m, bool with_l7);

 private:
  int pick(int n) { return static_cast<int>(rng_() % static_cast<uint64_t>(n)); }
  bool chance(int percent) { return pick(100) < percent; }
  core::IpAddr addr(core::Family f);
  core::Cidr cidr(core::Family f);
  core::PortRange ports();

  std::mt19937_64 rng_;
};

}  // namespace clovis::test
