#include "request_limits.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "convert.hpp"

namespace clovis::agent::service {

namespace {

// Empty, or why `field` is over its bound.
std::string over(const std::string& value, const char* field, size_t max) {
  if (value.size() <= max) return {};
  return fmt::format("{} is {} bytes, more than {}", field, value.size(), max);
}

template <typename Repeated>
std::string too_many(const Repeated& r, const char* field, int max) {
  const auto n = static_cast<long long>(r.size());
  if (n <= max) return {};
  return fmt::format("{} has {} entries, more than {}", field, n, max);
}

grpc::Status status(const std::string& why) {
  return why.empty() ? grpc::Status::OK : invalid(why);
}

std::string filter_problem(const v1::FlowFilter& f) {
  const std::pair<const char*, const google::protobuf::RepeatedPtrField<std::string>*> strings[] = {
      {"filter.src", &f.src()},   {"filter.dst", &f.dst()},   {"filter.ip", &f.ip()},      {"filter.proto", &f.proto()},
      {"filter.link", &f.link()}, {"filter.rule", &f.rule()}, {"filter.state", &f.state()}};
  for (const auto& [name, field] : strings) {
    if (auto why = too_many(*field, name, kMaxFilterEntries); !why.empty()) return why;
    for (const auto& s : *field)
      if (auto why = over(s, name, kMaxFilterEntryBytes); !why.empty()) return why;
  }
  const std::pair<const char*, const google::protobuf::RepeatedField<uint32_t>*> ports[] = {
      {"filter.port", &f.port()}, {"filter.sport", &f.sport()}, {"filter.dport", &f.dport()}};
  for (const auto& [name, field] : ports)
    if (auto why = too_many(*field, name, kMaxFilterEntries); !why.empty()) return why;
  return {};
}

// The HTTP facts of a Simulate or a Check.
std::string http_problem(const std::string& host, const std::string& path, const std::string& method) {
  for (auto why :
       {over(host, "host", kMaxHostBytes), over(path, "path", kMaxPathBytes), over(method, "method", kMaxMethodBytes)})
    if (!why.empty()) return why;
  return {};
}

std::string header_problem(const std::string& name, const std::string& value) {
  if (auto why = over(name, "a header name", kMaxHeaderNameBytes); !why.empty()) return why;
  return over(value, fmt::format("header {}", name.substr(0, 64)).c_str(), kMaxHeaderValueBytes);
}

}  // namespace

grpc::Status check_request(const v1::ApplyRequest& r) {
  if (auto why = over(r.mapping_yaml(), "mapping_yaml", core::kMaxMappingBytes); !why.empty()) return invalid(why);
  if (auto why = over(r.source(), "source", kMaxSourceBytes); !why.empty()) return invalid(why);
  // One line of text: it is logged and kept in the history as it is.
  if (std::any_of(r.source().begin(), r.source().end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
    return invalid("source has a control character (a line break?): name the mapping in one line");
  return grpc::Status::OK;
}

grpc::Status check_request(const v1::ListFlowsRequest& r) {
  if (r.last() > kMaxLast) return invalid(fmt::format("last is {}, more than {}", r.last(), kMaxLast));
  return status(filter_problem(r.filter()));
}

grpc::Status check_request(const v1::WatchFlowsRequest& r) {
  return status(filter_problem(r.filter()));
}

grpc::Status check_request(const v1::SimulateRequest& r) {
  for (auto why :
       {over(r.src(), "src", kMaxShortBytes), over(r.dst(), "dst", kMaxShortBytes),
        over(r.proto(), "proto", kMaxShortBytes), over(r.dscp(), "dscp", kMaxShortBytes),
        over(r.iif(), "iif", kMaxShortBytes), http_problem(r.host(), r.path(), r.method()),
        too_many(r.headers(), "headers", kMaxHeaders), too_many(r.latency_ms(), "latency_ms", CLV_MAX_LINKS),
        too_many(r.jitter_ms(), "jitter_ms", CLV_MAX_LINKS), too_many(r.loss_pct(), "loss_pct", CLV_MAX_LINKS)})
    if (!why.empty()) return invalid(why);
  for (const auto& [k, v] : r.headers())
    if (auto why = header_problem(k, v); !why.empty()) return invalid(why);
  for (const auto* m : {&r.latency_ms(), &r.jitter_ms(), &r.loss_pct()})
    for (const auto& [link, v] : *m)
      if (auto why = over(link, "a what-if link name", kMaxShortBytes); !why.empty()) return invalid(why);
  return grpc::Status::OK;
}

std::string check_limits(const ::envoy::service::auth::v3::CheckRequest& r) {
  const auto& a = r.attributes();
  for (auto why : {over(a.source().address().socket_address().address(), "source address", kMaxShortBytes),
                   over(a.destination().address().socket_address().address(), "destination address", kMaxShortBytes)})
    if (!why.empty()) return why;
  if (!a.request().has_http()) return {};
  const auto& http = a.request().http();
  if (auto why = http_problem(http.host(), http.path(), http.method()); !why.empty()) return why;
  if (auto why = too_many(http.headers(), "headers", kMaxHeaders); !why.empty()) return why;
  if (auto why = too_many(http.header_map().headers(), "header_map", kMaxHeaders); !why.empty()) return why;
  for (const auto& [k, v] : http.headers())
    if (auto why = header_problem(k, v); !why.empty()) return why;
  for (const auto& h : http.header_map().headers())
    if (auto why = header_problem(h.key(), h.raw_value().empty() ? h.value() : h.raw_value()); !why.empty()) return why;
  return {};
}

}  // namespace clovis::agent::service
