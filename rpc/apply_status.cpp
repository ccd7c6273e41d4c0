#include "clovis/rpc/apply_status.hpp"

#include <fmt/format.h>

#include "clovis/rpc/wire.hpp"

namespace clovis::rpc {

namespace {

v1::Severity severity(core::Severity s) {
  return s == core::Severity::kError ? v1::SEVERITY_ERROR : v1::SEVERITY_WARNING;
}

// The diagnostics as the trailer carries them, cut to kMaxTrailerBytes.
std::string trailer(const core::Diagnostics& d, const std::string& file) {
  v1::Diagnostics out;
  const auto& items = d.items();
  for (size_t i = 0; i < items.size(); ++i) {
    to_proto(items[i], file, out.add_items());
    if (out.ByteSizeLong() <= kMaxTrailerBytes) continue;
    out.mutable_items()->RemoveLast();
    v1::Diagnostic* more = out.add_items();
    more->set_severity(v1::SEVERITY_ERROR);
    more->set_file(file);
    more->set_message(fmt::format("{} more diagnostics not shown", items.size() - i));
    more->set_hint(fmt::format("clovisctl validate -f {} lists them all", file));
    break;
  }
  return out.SerializeAsString();
}

std::string message_text(const core::Diagnostics& d, const std::string& file) {
  std::string out;
  const auto& items = d.items();
  for (size_t i = 0; i < items.size(); ++i) {
    std::string line = core::format_diagnostic(items[i], file);
    if (out.size() + line.size() > kMaxStatusMessage) {
      out += fmt::format("... and {} more", items.size() - i);
      break;
    }
    out += line + (i + 1 < items.size() ? "\n" : "");
  }
  return out;
}

}  // namespace

void to_proto(const core::Diagnostic& d, const std::string& file, v1::Diagnostic* out) {
  out->set_severity(severity(d.severity));
  out->set_file(file);
  out->set_line(static_cast<uint32_t>(d.loc.line));
  out->set_col(static_cast<uint32_t>(d.loc.col));
  out->set_path(d.path);
  out->set_message(d.message);
  out->set_hint(d.hint);
}

grpc::Status rejected_status(const core::Diagnostics& d, const std::string& file, grpc::ServerContext* ctx) {
  ctx->AddTrailingMetadata(kDiagnosticsTrailer, trailer(d, file));
  return {grpc::StatusCode::INVALID_ARGUMENT, message_text(d, file)};
}

}  // namespace clovis::rpc
