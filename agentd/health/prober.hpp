// Active probes for one link: ICMP echo and TCP connect, each socket bound to
// the link's interface (SO_BINDTODEVICE) and carrying its mark (SO_MARK), so
// the probe really leaves by that link whatever the main routing table says.
// Non-blocking: the owner polls fds() and calls on_ready()/expire().
#pragma once

#include <poll.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "link_monitor.hpp"
#include "result.hpp"

namespace clovis::agent::health {

struct ProbeTarget {
  core::ProbeKind kind = core::ProbeKind::kIcmp;
  core::IpAddr addr;
  uint16_t port = 0;
  std::string label() const;
};

struct LinkProbeSpec {
  int slot = 0;
  std::string interface;
  uint32_t mark = 0;
  std::vector<ProbeTarget> targets;
  std::chrono::milliseconds timeout{800};
};

class LinkProber {
 public:
  explicit LinkProber(LinkProbeSpec spec);
  ~LinkProber();
  LinkProber(const LinkProber&) = delete;
  LinkProber& operator=(const LinkProber&) = delete;

  // Starts a round: one probe per target. A round still running is abandoned
  // (its open probes count as unanswered).
  void start_round(Clock::time_point now);
  // Descriptors to poll for the open probes.
  void fds(std::vector<pollfd>* out) const;
  // Handles readiness of one of our fds.
  void on_ready(int fd, short revents, Clock::time_point now);
  // Closes probes past their deadline as failed.
  void expire(Clock::time_point now);
  // When the running round has every result, returns them (once).
  std::optional<std::vector<ProbeResult>> take_round();
  Clock::time_point deadline() const { return deadline_; }
  bool in_round() const { return in_round_; }
  const LinkProbeSpec& spec() const { return spec_; }

 private:
  struct Pending {
    size_t target;
    Clock::time_point sent;
    uint16_t seq = 0;  // ICMP
    int tcp_fd = -1;   // TCP
  };
  core::Result<int> open_socket(int family, int type, int protocol);
  void send_icmp(size_t i, Clock::time_point now);
  void send_tcp(size_t i, Clock::time_point now);
  void read_icmp(int fd, Clock::time_point now);
  void finish(size_t pending_index, bool ok, Clock::time_point now);

  LinkProbeSpec spec_;
  int icmp4_ = -1, icmp6_ = -1;
  uint16_t ident_ = 0, seq_ = 0;
  bool in_round_ = false;
  Clock::time_point deadline_{};
  std::vector<Pending> pending_;
  std::vector<ProbeResult> results_;
  size_t outstanding_ = 0;
};

}  // namespace clovis::agent::health
