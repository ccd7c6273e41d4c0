#include "prober.hpp"

#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "log/log.hpp"

namespace clovis::agent::health {

namespace {

uint16_t icmp_checksum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

socklen_t to_sockaddr(const core::IpAddr& a, uint16_t port, sockaddr_storage* ss) {
  std::memset(ss, 0, sizeof *ss);
  if (a.family == core::Family::kV4) {
    auto* s = reinterpret_cast<sockaddr_in*>(ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    std::memcpy(&s->sin_addr, a.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(ss);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(port);
  std::memcpy(&s->sin6_addr, a.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

// A socket refused for want of privilege, not for a fault of the link.
bool privilege_errno(int e) {
  return e == EPERM || e == EACCES;
}

// What to do about a refused socket() call.
std::string socket_hint(int type, int e) {
  if (type == SOCK_RAW && privilege_errno(e)) return " (needs CAP_NET_RAW)";
  if (type == SOCK_DGRAM && e == EACCES) return fmt::format(" (gid {} is outside net.ipv4.ping_group_range)", getgid());
  return "";
}

const char* socket_name(int type) {
  return type == SOCK_RAW ? "raw ICMP socket" : type == SOCK_DGRAM ? "ping socket" : "TCP socket";
}

}  // namespace

std::string ProbeTarget::label() const {
  if (kind == core::ProbeKind::kIcmp) return "icmp " + addr.str();
  return addr.family == core::Family::kV6 ? fmt::format("tcp [{}]:{}", addr.str(), port)
                                          : fmt::format("tcp {}:{}", addr.str(), port);
}

LinkProber::LinkProber(LinkProbeSpec spec)
    : spec_(std::move(spec)), ident_(static_cast<uint16_t>((getpid() << 6) ^ spec_.slot)) {}

core::Result<core::Fd> LinkProber::open_socket(int family, int type, int protocol) {
  core::Fd fd(socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol));
  if (!fd) {
    const int e = errno;
    return core::fail(core::ErrorCode::kIo, std::string(std::strerror(e)) + socket_hint(type, e), socket_name(type), e);
  }
  // Leave by this link: its device, and its mark for the link's routing table.
  const char* failed = nullptr;
  if (setsockopt(fd.get(), SOL_SOCKET, SO_BINDTODEVICE, spec_.interface.c_str(),
                 static_cast<socklen_t>(spec_.interface.size())) != 0)
    failed = "SO_BINDTODEVICE";  // before Linux 5.7 it needs CAP_NET_RAW
  else if (setsockopt(fd.get(), SOL_SOCKET, SO_MARK, &spec_.mark, sizeof spec_.mark) != 0)
    failed = "SO_MARK";  // CAP_NET_ADMIN
  if (failed) {
    const int e = errno;
    return core::fail(core::ErrorCode::kIo, fmt::format("{}: {}", failed, std::strerror(e)),
                      fmt::format("{} bound to {}", socket_name(type), spec_.interface), e);
  }
  return fd;
}

void LinkProber::note_problem(std::string* slot, std::string problem, const std::string& what) {
  if (problem == *slot) return;
  if (!problem.empty())
    log_warning(
        fmt::format("link {}: cannot probe by {} on {}: {}; until this is fixed the link is judged by its "
                    "carrier alone (see clovisd(8), NOTES)",
                    spec_.name, what, spec_.interface, problem));
  else log_info(fmt::format("link {}: probing by {} on {} works again", spec_.name, what, spec_.interface));
  *slot = std::move(problem);
}

// Raw first: it needs nothing but CAP_NET_RAW and sees the whole reply. A
// ping socket needs the process's group in net.ipv4.ping_group_range (Debian:
// "1 0", nobody), which clovisd cannot set for the host.
LinkProber::IcmpSocket* LinkProber::icmp_socket(bool v6) {
  IcmpSocket& s = v6 ? icmp6_ : icmp4_;
  if (s.fd) return &s;
  const int family = v6 ? AF_INET6 : AF_INET;
  const int proto = v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP};
  auto raw = open_socket(family, SOCK_RAW, proto);
  std::string problem;
  if (raw) {
    s.fd = std::move(*raw), s.ping = false;
  } else if (auto ping = open_socket(family, SOCK_DGRAM, proto)) {
    s.fd = std::move(*ping), s.ping = true;
    log_info(fmt::format("link {}: {}; probing by a ping socket instead", spec_.name, raw.error().what()));
  } else if (privilege_errno(raw.error().sys_errno)) {
    problem = raw.error().what() + "; " + ping.error().what();
  }  // else a fault of the link (its interface went away): the probe is lost
  note_problem(&s.cannot_open, problem, v6 ? "ICMPv6 echo" : "ICMP echo");
  return s.fd ? &s : nullptr;
}

void LinkProber::start_round(Clock::time_point now) {
  if (in_round_) expire(Clock::time_point::max());
  results_.assign(spec_.targets.size(), ProbeResult{});
  pending_.clear();
  outstanding_ = 0;
  in_round_ = true;
  deadline_ = now + spec_.timeout;
  for (size_t i = 0; i < spec_.targets.size(); ++i) {
    results_[i].target = spec_.targets[i].label();
    if (spec_.targets[i].kind == core::ProbeKind::kIcmp) send_icmp(i, now);
    else send_tcp(i, now);
  }
}

void LinkProber::send_icmp(size_t i, Clock::time_point now) {
  const ProbeTarget& t = spec_.targets[i];
  const bool v6 = t.addr.family == core::Family::kV6;
  IcmpSocket* sock = icmp_socket(v6);
  if (!sock) {
    results_[i].cannot_probe = (v6 ? icmp6_ : icmp4_).cannot_open;
    return;
  }
  const int fd = sock->fd.get();
  uint8_t pkt[16] = {};
  pkt[0] = v6 ? uint8_t{ICMP6_ECHO_REQUEST} : uint8_t{ICMP_ECHO};
  const uint16_t seq = ++seq_;
  pkt[4] = static_cast<uint8_t>(ident_ >> 8), pkt[5] = static_cast<uint8_t>(ident_);
  pkt[6] = static_cast<uint8_t>(seq >> 8), pkt[7] = static_cast<uint8_t>(seq);
  if (!v6) {  // the kernel computes ICMPv6 checksums itself (and ping sockets' always)
    uint16_t c = icmp_checksum(pkt, sizeof pkt);
    pkt[2] = static_cast<uint8_t>(c >> 8), pkt[3] = static_cast<uint8_t>(c);
  }
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(t.addr, 0, &ss);
  if (sendto(fd, pkt, sizeof pkt, 0, reinterpret_cast<sockaddr*>(&ss), len) < 0) return;
  pending_.push_back({i, now, seq, core::Fd{}});
  ++outstanding_;
}

void LinkProber::send_tcp(size_t i, Clock::time_point now) {
  const ProbeTarget& t = spec_.targets[i];
  auto s = open_socket(t.addr.family == core::Family::kV6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  // SO_MARK needs CAP_NET_ADMIN (SO_BINDTODEVICE, before Linux 5.7, CAP_NET_RAW).
  note_problem(&tcp_problem_, !s && privilege_errno(s.error().sys_errno) ? s.error().what() : "", "TCP connect");
  if (!s) {
    if (!tcp_problem_.empty()) results_[i].cannot_probe = tcp_problem_;
    return;  // otherwise unanswered: the round records it as lost
  }
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(t.addr, t.port, &ss);
  if (connect(s->get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) return;
  pending_.push_back({i, now, 0, std::move(*s)});
  ++outstanding_;
}

void LinkProber::fds(std::vector<pollfd>* out) const {
  if (!in_round_) return;
  bool icmp4 = false, icmp6 = false;
  for (const auto& p : pending_) {
    if (p.tcp_fd) out->push_back({p.tcp_fd.get(), POLLOUT, 0});
    else if (p.target < spec_.targets.size())
      (spec_.targets[p.target].addr.family == core::Family::kV6 ? icmp6 : icmp4) = true;
  }
  if (icmp4) out->push_back({icmp4_.fd.get(), POLLIN, 0});
  if (icmp6) out->push_back({icmp6_.fd.get(), POLLIN, 0});
}

void LinkProber::finish(size_t k, bool ok, Clock::time_point now) {
  Pending& p = pending_[k];
  if (p.target >= results_.size()) return;  // already finished
  results_[p.target].ok = ok;
  results_[p.target].rtt_ms = ok ? ms_between(p.sent, now) : 0;
  p.tcp_fd.reset();
  p.target = SIZE_MAX;
  --outstanding_;
}

void LinkProber::read_icmp(int fd, Clock::time_point now) {
  uint8_t buf[1500];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    const IcmpSocket& sock = fd == icmp4_.fd.get() ? icmp4_ : icmp6_;
    size_t off = 0;
    uint8_t reply = uint8_t{ICMP6_ECHO_REPLY};
    if (fd == icmp4_.fd.get()) {
      if (!sock.ping) off = static_cast<size_t>(buf[0] & 0x0f) * 4;  // raw IPv4 sockets deliver the IP header too
      reply = uint8_t{ICMP_ECHOREPLY};
    }
    if (static_cast<size_t>(n) < off + 8 || buf[off] != reply) continue;
    const uint16_t id = static_cast<uint16_t>(buf[off + 4] << 8 | buf[off + 5]);
    const uint16_t seq = static_cast<uint16_t>(buf[off + 6] << 8 | buf[off + 7]);
    // A raw socket sees every echo reply of the host; a ping socket only its
    // own, under an id the kernel chose.
    if (!sock.ping && id != ident_) continue;
    for (size_t k = 0; k < pending_.size(); ++k)
      if (!pending_[k].tcp_fd && pending_[k].seq == seq && pending_[k].target != SIZE_MAX) finish(k, true, now);
  }
}

void LinkProber::on_ready(int fd, short revents, Clock::time_point now) {
  if (fd == icmp4_.fd.get() || fd == icmp6_.fd.get()) {
    read_icmp(fd, now);
    return;
  }
  for (size_t k = 0; k < pending_.size(); ++k) {
    if (pending_[k].tcp_fd.get() != fd) continue;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    finish(k, err == 0 && !(revents & (POLLERR | POLLHUP)), now);
  }
}

void LinkProber::expire(Clock::time_point now) {
  if (!in_round_ || now < deadline_) return;
  for (size_t k = 0; k < pending_.size(); ++k)
    if (pending_[k].target != SIZE_MAX) finish(k, false, now);
  outstanding_ = 0;
}

std::optional<std::vector<ProbeResult>> LinkProber::take_round() {
  if (!in_round_ || outstanding_ > 0) return std::nullopt;
  in_round_ = false;
  return std::move(results_);
}

}  // namespace clovis::agent::health
