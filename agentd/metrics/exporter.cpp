#include "metrics/exporter.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <exception>

#include <fmt/format.h>
#include <prometheus/exposer.h>

namespace clovis::agent::metrics {

core::Result<std::string> parse_listen(const std::string& s) {
  auto bad = [&](const std::string& why) {
    return core::fail(core::ErrorCode::kInvalidArgument,
                      fmt::format("{}: {}; give ADDRESS:PORT (127.0.0.1:9464, [::1]:9464)", s, why));
  };
  const auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad("no port");
  std::string host = s.substr(0, colon);
  const std::string port = s.substr(colon + 1);
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc{} || end != port.data() + port.size() || p == 0 || p > 65535) return bad("bad port");
  unsigned char buf[16];
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), buf) != 1) return bad("bad IPv6 address");
  } else if (inet_pton(AF_INET, host.c_str(), buf) != 1) {
    return bad("bad IPv4 address (IPv6 goes in brackets)");
  }
  return s;
}

core::Result<std::unique_ptr<Exporter>> Exporter::start(const std::string& listen,
                                                        std::shared_ptr<Collector> collector) {
  auto addr = parse_listen(listen);
  if (!addr) return core::error_of(addr);
  std::unique_ptr<Exporter> e(new Exporter);
  try {
    // Two threads: a scrape never waits behind another client's connection.
    e->exposer_ = std::make_unique<prometheus::Exposer>(*addr, 2);
  } catch (const std::exception& ex) {
    return core::fail(core::ErrorCode::kIo,
                      fmt::format("cannot serve metrics on {}: {}; is the address this host's and the port free "
                                  "(ss -ltnp)?",
                                  listen, ex.what()));
  }
  e->collector_ = std::move(collector);
  e->exposer_->RegisterCollectable(e->collector_);
  e->url_ = fmt::format("http://{}/metrics", listen);
  return e;
}

Exporter::~Exporter() = default;

}  // namespace clovis::agent::metrics
