// clovisd --dump: the kernel's state as JSON, named with the persisted mapping.
#pragma once

#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "compiled.hpp"
#include "dataplane.hpp"
#include "kernel/bpf_dataplane.hpp"

namespace clovis::agent {

// One flow as the stable JSON used by --dump (and by clovisctl flows).
nlohmann::json flow_json(const FlowEntry& e, const core::CompiledRules* rules, uint64_t now_ns);

int dump_state(const kernel::BpfOptions& bpf, const std::string& state_dir, std::ostream& out);

}  // namespace clovis::agent
