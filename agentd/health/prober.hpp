// Active probes for one link: ICMP echo, TCP connect, an HTTP GET and a DNS
// query (the bytes of the last two in core/probe_wire.hpp), each socket bound to
// the link's interface (SO_BINDTODEVICE) and carrying its mark (SO_MARK), so
// the probe really leaves by that link whatever the main routing table says.
// Non-blocking: the owner polls fds() and calls on_ready()/expire().
//
// ICMP echo goes out of a raw socket (CAP_NET_RAW, which the packaged unit
// grants), or, where that is refused, an unprivileged ping socket
// (SOCK_DGRAM, allowed for the groups in net.ipv4.ping_group_range). When
// neither opens, the probe's result says "cannot probe" and why: that is a
// fault of this host, not of the link, so it must not count as loss (see
// LinkMonitor::round) and is logged as a warning once.
#pragma once

#include <poll.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "core/result.hpp"
#include "link_monitor.hpp"

namespace clovis::agent::health {

struct ProbeTarget {
  core::ProbeKind kind = core::ProbeKind::kIcmp;
  core::IpAddr addr;
  uint16_t port = 0;
  std::string path;  // http
  std::string name;  // dns
  std::string label() const;
};

struct LinkProbeSpec {
  int slot = 0;
  std::string name;  // the link's, for log lines
  std::string interface;
  uint32_t mark = 0;
  std::vector<ProbeTarget> targets;
  std::chrono::milliseconds timeout{800};
};

class LinkProber {
 public:
  explicit LinkProber(LinkProbeSpec spec);
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
  // One ICMP socket per family, opened on first use and kept.
  struct IcmpSocket {
    core::Fd fd;
    bool ping = false;        // a ping socket: no IP header, the kernel owns the echo id
    std::string cannot_open;  // why the last attempt failed; empty when it did not
  };
  struct Pending {
    size_t target;
    Clock::time_point sent;
    uint16_t seq = 0;           // ICMP; the query id for DNS
    core::Fd fd;                // TCP, HTTP, DNS: the probe's own socket
    bool sent_request = false;  // HTTP: connected and the GET is out
    std::string reply;          // HTTP: the response so far
  };
  core::Result<core::Fd> open_socket(int family, int type, int protocol);
  // The family's ICMP socket, opening it if needed; nullptr when it cannot
  // be opened (the reason is in cannot_open, logged when it changes).
  IcmpSocket* icmp_socket(bool v6);
  void note_problem(std::string* slot, std::string problem, const std::string& what);
  void send_icmp(size_t i, Clock::time_point now);
  void send_tcp(size_t i, Clock::time_point now);
  void send_dns(size_t i, Clock::time_point now);
  // A socket of `type` bound to the link, or nullptr and the reason in the
  // result when this host cannot open one.
  std::optional<core::Fd> probe_socket(size_t i, int type);
  void on_http(size_t k, short revents, Clock::time_point now);
  void on_dns(size_t k, Clock::time_point now);
  void read_icmp(int fd, Clock::time_point now);
  void finish(size_t pending_index, bool ok, Clock::time_point now, std::string why = {});

  LinkProbeSpec spec_;
  IcmpSocket icmp4_, icmp6_;
  std::string tcp_problem_;
  uint16_t ident_ = 0, seq_ = 0;
  std::mt19937 dns_ids_{std::random_device{}()};  // unguessable query ids
  bool in_round_ = false;
  Clock::time_point deadline_{};
  std::vector<Pending> pending_;
  std::vector<ProbeResult> results_;
  size_t outstanding_ = 0;
};

}  // namespace clovis::agent::health
