// Legacy tc filters of clovis that no record names: an older release's, or
// ones whose STATE-DIR/tc record was lost. A legacy cls_bpf filter keeps its
// program, and the program its maps, alive without any pin: left attached,
// it would go on steering with the last rules after an uninstall.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace clovis::agent::kernel {

// Detaches, on every interface of the current network namespace, ingress
// and egress, the filter with clovis's priority and handle when its program
// is clovis's (name clv_*). Returns how many it detached; errors (one per
// filter that would not go) are appended to `errors`.
size_t detach_legacy_leftovers(std::vector<std::string>* errors);

}  // namespace clovis::agent::kernel
