// clovisctl's documented exit codes (man clovisctl(8), EXIT STATUS).
#pragma once

// The numbers live in rpc/ beside the one mapping of a call's status to them.
#include "clovis/rpc/status.hpp"

namespace clovis::cli {

using rpc::exit_code_for;
using rpc::kExitInternal;
using rpc::kExitInvalid;
using rpc::kExitIo;
using rpc::kExitOk;
using rpc::kExitUnavailable;
using rpc::kExitUsage;

}  // namespace clovis::cli
