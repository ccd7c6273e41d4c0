#include "link_events.hpp"

namespace clovis::agent::health {

core::Result<LinkEvents> LinkEvents::open() {
  auto events = kernel::NetlinkEvents::open(kernel::NetlinkEvents::kLinks, "link events");
  if (!events) return core::error_of(std::move(events));
  return LinkEvents(std::move(*events));
}

void LinkEvents::drain(const std::function<void(const LinkEvent&)>& on_event) {
  // Lost notifications (a full buffer) are not looked for: the health
  // loop's poll of each link's carrier catches up.
  (void)events_.drain([&](const kernel::HostEvent& e) {
    if (e.kind == kernel::HostEvent::Kind::kAddress) return;
    on_event({e.link.ifindex, e.link.name, e.link.up, e.link.carrier, e.kind == kernel::HostEvent::Kind::kLinkRemoved});
  });
}

}  // namespace clovis::agent::health
