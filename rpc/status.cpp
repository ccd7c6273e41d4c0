#include "clovis/rpc/status.hpp"

namespace clovis::rpc {

grpc::StatusCode status_code(core::ErrorCode code) {
  switch (code) {
    case core::ErrorCode::kInvalidArgument: return grpc::StatusCode::INVALID_ARGUMENT;
    case core::ErrorCode::kNotFound: return grpc::StatusCode::NOT_FOUND;
    case core::ErrorCode::kLimit: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case core::ErrorCode::kIo: return grpc::StatusCode::UNAVAILABLE;
    case core::ErrorCode::kPrecondition: return grpc::StatusCode::FAILED_PRECONDITION;
    case core::ErrorCode::kInternal: return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::INTERNAL;
}

grpc::Status to_status(const core::Error& e) {
  return {status_code(e.code), e.message};
}

int exit_code_for(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return kExitOk;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::ABORTED: return kExitInvalid;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:  // busy (e.g. --max-watchers watches open): try later
    case grpc::StatusCode::UNIMPLEMENTED: return kExitUnavailable;
    default: return kExitInternal;
  }
}

}  // namespace clovis::rpc
