// Errors across the wire, mapped in one place: core::Error -> grpc::Status
// (clovisd's answers carry real status codes) -> clovisctl's documented exit
// codes (clovisctl(8), EXIT STATUS).
#pragma once

#include <grpcpp/grpcpp.h>

#include "core/result.hpp"

namespace clovis::rpc {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalid = 1;      // the mapping (or a request) was rejected
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitIo = 3;           // a file could not be read
inline constexpr int kExitUnavailable = 4;  // the agent is not running / not reachable
inline constexpr int kExitInternal = 5;

// kInvalidArgument: INVALID_ARGUMENT, kNotFound: NOT_FOUND, kLimit:
// RESOURCE_EXHAUSTED, kIo: UNAVAILABLE, kPrecondition: FAILED_PRECONDITION,
// kInternal: INTERNAL. (A rejected mapping's diagnostics: apply_status.hpp.)
grpc::StatusCode status_code(core::ErrorCode code);
// The status clovisd answers a failed request with; its message is the
// error's message (the request names the context).
grpc::Status to_status(const core::Error& e);

// clovisctl's exit code for a call that ended with `code`.
int exit_code_for(grpc::StatusCode code);

}  // namespace clovis::rpc
