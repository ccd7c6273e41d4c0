// The host's own addresses, for the ext_authz Check's threads: a proxy's
// report of a connection addressed to the edge host itself must never pin a
// flow (those packets are the host's to deliver, not to steer). Refreshed by
// the daemon's loop on netlink address events; read by any thread.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "core/net.hpp"
#include "core/result.hpp"

namespace clovis::agent::kernel {

class LocalAddresses {
 public:
  // Reads them again, with an rtnetlink socket of its own (the agent's is
  // not for this thread).
  core::Status refresh();
  // Whether `a` is one of them (any address of 127.0.0.0/8 and ::1 too).
  bool contains(const core::IpAddr& a) const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const std::vector<core::IpAddr>> addrs_ = std::make_shared<std::vector<core::IpAddr>>();
};

}  // namespace clovis::agent::kernel
