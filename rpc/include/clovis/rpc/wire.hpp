// Names that travel on the wire between clovisd and its clients, defined
// once: clovisd writes them, clovisctl and the Envoy config it generates read
// them.
#pragma once

namespace clovis::rpc {

// The trailing metadata of INVALID_ARGUMENT from Apply and Rollback: a
// serialized clovis.v1.Diagnostics.
inline constexpr const char* kDiagnosticsTrailer = "clovis-diagnostics-bin";

// ext_authz: the headers clovisd's Check answer adds to a request. Envoy
// routes on the link; a client's own x-clovis-* headers are dropped.
inline constexpr const char* kLinkHeader = "x-clovis-link";
inline constexpr const char* kRuleHeader = "x-clovis-rule";
inline constexpr const char* kErrorHeader = "x-clovis-error";

}  // namespace clovis::rpc
