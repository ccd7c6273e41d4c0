// The flow (or HTTP request) to simulate, built from what a person typed:
// `clovisctl simulate`'s options and clovisd's Simulate RPC both come here,
// so an offline simulation and a live one check the same things and ask
// about the same flow. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "classifier.hpp"
#include "result.hpp"

namespace clovis::core {

struct FlowQuerySpec {
  std::string src, dst;       // IP addresses, of one family
  std::string proto = "tcp";  // a name or a number
  uint32_t sport = 0, dport = 0;
  std::string dscp;  // 0-63 or a name; empty: 0
  uint32_t mark = 0;
  std::string iif;
  // L7: any of these makes the query a request (path "/" and method GET by default).
  std::string host, path, method;
  std::vector<std::pair<std::string, std::string>> headers;  // in the order the query lists them
};

// Errors (kInvalidArgument, context "simulate") name the field, after
// `prefix`: "--" for the CLI's options.
Result<FlowQuery> build_flow_query(const FlowQuerySpec& s, std::string_view prefix = {});

}  // namespace clovis::core
