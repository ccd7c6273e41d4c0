// clovisd --dump: the kernel's state as JSON, named with the persisted mapping.
#pragma once

#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/compiled.hpp"
#include "kernel/bpf_dataplane.hpp"
#include "ports/dataplane.hpp"

namespace clovis::agent {

int dump_state(const kernel::BpfOptions& bpf, const std::string& state_dir, std::ostream& out);

}  // namespace clovis::agent
