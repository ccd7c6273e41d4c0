#include "host_watch.hpp"

namespace clovis::agent::kernel {

core::Result<HostWatch> HostWatch::open() {
  auto events = NetlinkEvents::open(NetlinkEvents::kLinks | NetlinkEvents::kAddresses, "link and address events");
  if (!events) return core::error_of(std::move(events));
  return HostWatch(std::move(*events));
}

bool HostWatch::drain() {
  bool changed = false;
  const bool lost = events_.drain([&](const HostEvent&) { changed = true; });
  return changed || lost;
}

}  // namespace clovis::agent::kernel
