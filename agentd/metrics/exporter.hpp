// The /metrics endpoint: prometheus-cpp's pull exposer (civetweb) serving
// the Collector on ADDRESS:PORT from its own threads.
#pragma once

#include <memory>
#include <string>

#include "core/result.hpp"
#include "metrics/collector.hpp"

namespace prometheus {
class Exposer;
}

namespace clovis::agent::metrics {

// "ADDRESS:PORT" as --metrics-listen takes it: an IPv4 address or a
// bracketed IPv6 one, and a port 1-65535. What civetweb listens on.
core::Result<std::string> parse_listen(const std::string& s);

class Exporter {
 public:
  // Listens at once; an address that cannot be bound is an error saying why.
  static core::Result<std::unique_ptr<Exporter>> start(const std::string& listen, std::shared_ptr<Collector> collector);
  ~Exporter();
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;
  // Where it serves: http://ADDRESS:PORT/metrics.
  const std::string& url() const { return url_; }

 private:
  Exporter() = default;
  std::shared_ptr<Collector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string url_;
};

}  // namespace clovis::agent::metrics
