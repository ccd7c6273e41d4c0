#include "prober.hpp"

#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "core/probe_wire.hpp"
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

// When the kernel received the packet `msg` was read from, on the steady
// clock: the steady clock now less how long the packet waited in the socket
// (its SO_TIMESTAMPNS stamp is on the real-time clock, read at the same
// moment). `now`, the wake-up's time, without a stamp.
Clock::time_point arrival(const msghdr& msg, Clock::time_point now) {
  for (const cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), const_cast<cmsghdr*>(c))) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
    timespec ts;
    std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
    timespec real;
    const Clock::time_point steady = Clock::now();
    clock_gettime(CLOCK_REALTIME, &real);
    const auto waited =
        std::chrono::seconds(real.tv_sec - ts.tv_sec) + std::chrono::nanoseconds(real.tv_nsec - ts.tv_nsec);
    if (waited.count() < 0) return now;  // the clock was set back meanwhile
    return steady - std::chrono::duration_cast<Clock::duration>(waited);
  }
  return now;
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

// "connection refused", as a probe's reason reads.
std::string errno_text(int e) {
  std::string s = std::strerror(e);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

// An HTTP probe's verdict once the status line is in: 2xx and 3xx are up.
std::pair<bool, std::string> http_verdict(int status) {
  if (status < 0) return {false, "not an HTTP response"};
  return {status >= 200 && status < 400, fmt::format("http {}", status)};
}

}  // namespace

std::string ProbeTarget::label() const {
  core::Probe p;
  p.kind = kind, p.target = addr, p.port = port, p.path = path, p.name = name;
  return core::probe_label(p);
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
  if (!s.fd) return nullptr;
  // Replies carry the time the kernel received them: the RTT is then the
  // link's, not the link's plus however long this thread took to wake up
  // (with every link's replies read in one wake-up, they would all share
  // that wake-up's time). Without it, the wake-up time is used.
  const int on = 1;
  setsockopt(s.fd.get(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  return &s;
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
    switch (spec_.targets[i].kind) {
      case core::ProbeKind::kIcmp: send_icmp(i, now); break;
      case core::ProbeKind::kTcp:
      case core::ProbeKind::kHttp: send_tcp(i, now); break;  // HTTP sends its GET once connected
      case core::ProbeKind::kDns: send_dns(i, now); break;
    }
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
  // The time of this send, not of the round's start: a round sends to every
  // target in turn. Taken before sendto, which on a virtual link can carry
  // the request all the way to the peer and back.
  (void)now;
  const Clock::time_point sent = Clock::now();
  if (sendto(fd, pkt, sizeof pkt, 0, reinterpret_cast<sockaddr*>(&ss), len) < 0) return;
  pending_.push_back({i, sent, seq, core::Fd{}, false, {}});
  ++outstanding_;
}

std::optional<core::Fd> LinkProber::probe_socket(size_t i, int type) {
  const ProbeTarget& t = spec_.targets[i];
  auto s = open_socket(t.addr.family == core::Family::kV6 ? AF_INET6 : AF_INET, type, 0);
  // SO_MARK needs CAP_NET_ADMIN (SO_BINDTODEVICE, before Linux 5.7, CAP_NET_RAW).
  note_problem(&tcp_problem_, !s && privilege_errno(s.error().sys_errno) ? s.error().what() : "",
               type == SOCK_STREAM ? "TCP connect" : "UDP");
  if (!s) {
    if (!tcp_problem_.empty()) results_[i].cannot_probe = tcp_problem_;
    return std::nullopt;  // otherwise unanswered: the round records it as lost
  }
  return std::move(*s);
}

void LinkProber::send_tcp(size_t i, Clock::time_point now) {
  auto s = probe_socket(i, SOCK_STREAM);
  if (!s) return;
  const ProbeTarget& t = spec_.targets[i];
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(t.addr, t.port, &ss);
  if (connect(s->get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    results_[i].why = errno_text(errno);
    return;
  }
  pending_.push_back({i, now, 0, std::move(*s), false, {}});
  ++outstanding_;
}

// A connected UDP socket of its own per query: replies from elsewhere never
// reach it, and an ICMP port unreachable comes back as ECONNREFUSED.
void LinkProber::send_dns(size_t i, Clock::time_point now) {
  auto s = probe_socket(i, SOCK_DGRAM);
  if (!s) return;
  const ProbeTarget& t = spec_.targets[i];
  const auto id = static_cast<uint16_t>(dns_ids_());
  const auto query = core::dns_query(id, t.name);
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(t.addr, t.port, &ss);
  if (connect(s->get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      send(s->get(), query.data(), query.size(), 0) < 0) {
    results_[i].why = errno_text(errno);
    return;
  }
  pending_.push_back({i, now, id, std::move(*s), false, {}});
  ++outstanding_;
}

void LinkProber::fds(std::vector<pollfd>* out) const {
  if (!in_round_) return;
  bool icmp4 = false, icmp6 = false;
  for (const auto& p : pending_) {
    if (p.fd) {
      const bool connecting = spec_.targets[p.target].kind == core::ProbeKind::kTcp ||
                              (spec_.targets[p.target].kind == core::ProbeKind::kHttp && !p.sent_request);
      out->push_back({p.fd.get(), static_cast<short>(connecting ? POLLOUT : POLLIN), 0});
    } else if (p.target < spec_.targets.size())
      (spec_.targets[p.target].addr.family == core::Family::kV6 ? icmp6 : icmp4) = true;
  }
  if (icmp4) out->push_back({icmp4_.fd.get(), POLLIN, 0});
  if (icmp6) out->push_back({icmp6_.fd.get(), POLLIN, 0});
}

void LinkProber::finish(size_t k, bool ok, Clock::time_point now, std::string why) {
  Pending& p = pending_[k];
  if (p.target >= results_.size()) return;  // already finished
  results_[p.target].ok = ok;
  results_[p.target].rtt_ms = ok ? ms_between(p.sent, now) : 0;
  results_[p.target].why = ok ? "" : std::move(why);
  p.fd.reset();
  p.target = SIZE_MAX;
  --outstanding_;
}

void LinkProber::read_icmp(int fd, Clock::time_point now) {
  uint8_t buf[1500];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
  for (;;) {
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov, msg.msg_iovlen = 1;
    msg.msg_control = control, msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(fd, &msg, 0);
    if (n <= 0) return;
    const Clock::time_point arrived = arrival(msg, now);
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
      if (!pending_[k].fd && pending_[k].seq == seq && pending_[k].target != SIZE_MAX)
        finish(k, true, std::max(arrived, pending_[k].sent));
  }
}

void LinkProber::on_ready(int fd, short revents, Clock::time_point now) {
  if (fd == icmp4_.fd.get() || fd == icmp6_.fd.get()) {
    read_icmp(fd, now);
    return;
  }
  for (size_t k = 0; k < pending_.size(); ++k) {
    if (pending_[k].fd.get() != fd || pending_[k].target == SIZE_MAX) continue;
    const core::ProbeKind kind = spec_.targets[pending_[k].target].kind;
    if (kind == core::ProbeKind::kDns) return on_dns(k, now);
    if (kind == core::ProbeKind::kHttp && pending_[k].sent_request) return on_http(k, revents, now);
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    const bool connected = err == 0 && !(revents & (POLLERR | POLLHUP));
    if (kind == core::ProbeKind::kTcp || !connected) return finish(k, connected, now, err ? errno_text(err) : "");
    // Connected: the GET, small enough for any socket buffer in one send.
    const ProbeTarget& t = spec_.targets[pending_[k].target];
    const std::string req = core::http_request(t.addr, t.port, t.path);
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
      return finish(k, false, now, "send: " + errno_text(errno));
    pending_[k].sent_request = true;
    return;
  }
}

void LinkProber::on_http(size_t k, short revents, Clock::time_point now) {
  Pending& p = pending_[k];
  char buf[512];
  for (;;) {
    const ssize_t n = recv(p.fd.get(), buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) return finish(k, false, now, errno_text(errno));
    if (n > 0 && p.reply.size() < 2048) p.reply.append(buf, static_cast<size_t>(n));
    if (const int status = core::http_status(p.reply); status != 0) {
      auto [ok, why] = http_verdict(status);
      return finish(k, ok, now, why);
    }
    if (n == 0) return finish(k, false, now, "connection closed before the status line");
  }
  if (revents & POLLERR) finish(k, false, now, "socket error");
}

void LinkProber::on_dns(size_t k, Clock::time_point now) {
  Pending& p = pending_[k];
  uint8_t buf[512];
  for (;;) {
    const ssize_t n = recv(p.fd.get(), buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) return finish(k, false, now, errno_text(errno));  // ECONNREFUSED: nothing listens
    const auto rcode = core::dns_response_rcode({buf, static_cast<size_t>(n)}, p.seq);
    if (!rcode) continue;  // not an answer to this query: keep waiting
    return finish(k, core::dns_rcode_ok(*rcode), now, "dns " + core::dns_rcode_name(*rcode));
  }
}

void LinkProber::expire(Clock::time_point now) {
  if (!in_round_ || now < deadline_) return;
  for (size_t k = 0; k < pending_.size(); ++k) {
    const size_t t = pending_[k].target;
    if (t == SIZE_MAX) continue;
    // ICMP and TCP keep their "unanswered"; the others say how far they got.
    const core::ProbeKind kind = spec_.targets[t].kind;
    std::string why = kind == core::ProbeKind::kHttp
                          ? (pending_[k].sent_request ? "timeout (no status line)" : "timeout (connect)")
                      : kind == core::ProbeKind::kDns ? "timeout"
                                                      : "";
    finish(k, false, now, std::move(why));
  }
  outstanding_ = 0;
}

std::optional<std::vector<ProbeResult>> LinkProber::take_round() {
  if (!in_round_ || outstanding_ > 0) return std::nullopt;
  in_round_ = false;
  return std::move(results_);
}

}  // namespace clovis::agent::health
