// What changes between two mappings: links, policies, rules, the default and
// the proxy settings, compared field by field on the model (not as text), so
// reformatting a file or reordering keys is no change. What `clovisctl apply`
// shows before it commits, and what the Apply RPC returns.
#pragma once

#include <string>
#include <vector>

#include "model.hpp"

namespace clovis::core {

struct DiffItem {
  std::string kind;    // sla, link, policy, rule, default, proxy, unparsed, auto-rollback
  std::string name;    // the entry's name ("default" for the default, "proxy" for the proxy settings)
  std::string change;  // added, removed, changed
  std::string detail;  // for "changed": what, e.g. "gateway 192.0.2.1 -> 192.0.2.9"
};

// Entries of `after` in their order (added or changed), then the removed
// ones in the order of `before`; SLA classes first, then links, policies, rules, default,
// proxy.
// `before` null: everything is added. Only the first `max_detail` items get
// their detail written; later ones are found and classified the same way
// (tests hold the two to each other) with an empty detail: a caller that
// shows 40 of 10 000 changed rules need not format the other 9 960.
std::vector<DiffItem> diff_mappings(const Mapping* before, const Mapping& after,
                                    size_t max_detail = static_cast<size_t>(-1));

}  // namespace clovis::core
