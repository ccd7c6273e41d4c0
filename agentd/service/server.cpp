#include "server.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "core/loader.hpp"
#include "core/net.hpp"

namespace clovis::agent::service {

namespace {

constexpr mode_t kSocketMode = 0660;
// The sync server's threads: the unary calls' and ListFlows' (at most
// kMaxListings of them); the watch streams take none.
constexpr int kMaxThreads = 64;

core::Unexpected<core::Error> sys_fail(const std::string& what, int err) {
  return core::fail(core::ErrorCode::kIo, std::strerror(err), what, err);
}

// The path must be free or hold a socket: gRPC replaces a socket, and we do
// not want to replace anything else.
core::Status check_path(const std::string& path) {
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path))
    return core::fail(core::ErrorCode::kInvalidArgument,
                      fmt::format("a socket path is 1 to {} bytes", sizeof(sockaddr_un::sun_path) - 1), path);
  std::error_code ec;
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir, ec) && !std::filesystem::create_directories(dir, ec))
    return sys_fail("create " + dir.string(), ec.value());
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode))
    return core::fail(core::ErrorCode::kInvalidArgument, "exists and is not a socket; remove it or choose another path",
                      path, EEXIST);
  return core::Ok{};
}

// Owner root, group clovis when it exists; notes say when it does not.
core::Status set_owner(const std::string& path, const std::string& group_name, std::vector<std::string>* notes) {
  if (chmod(path.c_str(), kSocketMode) != 0) return sys_fail("chmod " + path, errno);
  if (group_name.empty()) return core::Ok{};
  std::vector<char> buf(16384);
  struct group g {};
  struct group* found = nullptr;
  if (getgrnam_r(group_name.c_str(), &g, buf.data(), buf.size(), &found) != 0 || !found) {
    notes->push_back(fmt::format("no group {}: only root can use {} (groupadd --system {}, then add users to it)",
                                 group_name, path, group_name));
    return core::Ok{};
  }
  // Without CAP_CHOWN the socket stays root's: less usable, not less safe.
  if (chown(path.c_str(), static_cast<uid_t>(-1), found->gr_gid) != 0)
    notes->push_back(
        fmt::format("cannot give {} to group {} ({}): only root can use it", path, group_name, std::strerror(errno)));
  return core::Ok{};
}

}  // namespace

core::Result<std::string> loopback_listen_address(const std::string& spec) {
  auto bad = [&](const std::string& why) {
    return core::fail(core::ErrorCode::kInvalidArgument,
                      fmt::format("'{}' {}; write 127.0.0.1:PORT or [::1]:PORT (a loopback address: the "
                                  "service has no authentication, so it never listens beyond this host)",
                                  spec, why),
                      "TCP listener");
  };
  std::string host, port;
  if (!spec.empty() && spec[0] == '[') {
    const size_t close = spec.find("]:");
    if (close == std::string::npos) return bad("is not [ADDR]:PORT");
    host = spec.substr(1, close - 1);
    port = spec.substr(close + 2);
  } else {
    const size_t colon = spec.rfind(':');
    if (colon == std::string::npos || spec.find(':') != colon) return bad("is not ADDR:PORT");
    host = spec.substr(0, colon);
    port = spec.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535)
    return bad("has no port 0-65535");
  auto a = core::IpAddr::parse(host);
  if (!a) return bad("does not start with an IP address");
  const bool loopback = a->family == core::Family::kV4 ? a->bytes[0] == 127 : *a == *core::IpAddr::parse("::1");
  if (!loopback) return bad("is not a loopback address");
  return a->family == core::Family::kV4 ? fmt::format("{}:{}", a->str(), port) : fmt::format("[{}]:{}", a->str(), port);
}

core::Result<SocketLock> SocketLock::take(const std::string& path) {
  if (auto st = check_path(path); !st) return core::error_of(st);
  const std::string lock = path + ".lock";
  core::Fd fd(open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return sys_fail("open " + lock, errno);
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    ssize_t n = pread(fd.get(), pid, sizeof pid - 1, 0);
    return core::fail(core::ErrorCode::kIo,
                      fmt::format("another clovisd (pid {}) serves this socket; stop it first, or give this "
                                  "clovisd another socket path",
                                  n > 0 ? std::string(pid, static_cast<size_t>(n)) : "?"),
                      path, EADDRINUSE);
  }
  const std::string me = std::to_string(getpid());
  if (ftruncate(fd.get(), 0) == 0 && pwrite(fd.get(), me.data(), me.size(), 0) < 0) { /* informational only */
  }
  return SocketLock(std::move(fd));
}

core::Result<std::unique_ptr<ApiServer>> ApiServer::start(const ServerOptions& o, AgentService& service) {
  auto lock = SocketLock::take(o.socket_path);
  if (!lock) return core::error_of(lock);
  return start(o, service, std::move(*lock));
}

core::Result<std::unique_ptr<ApiServer>> ApiServer::start(const ServerOptions& o, AgentService& service,
                                                          SocketLock lock) {
  return start(
      o, service, [&service] { service.stop(); }, std::move(lock));
}

core::Result<std::unique_ptr<ApiServer>> ApiServer::start(const ServerOptions& o, grpc::Service& service,
                                                          std::function<void()> on_shutdown, SocketLock lock) {
  return start(o, service, std::move(on_shutdown), std::nullopt, std::move(lock));
}

core::Result<std::unique_ptr<ApiServer>> ApiServer::start(const ServerOptions& o, grpc::Service& service,
                                                          AsyncServing async, SocketLock lock) {
  auto stop = async.stop;
  return start(o, service, std::move(stop), std::move(async), std::move(lock));
}

core::Result<std::unique_ptr<ApiServer>> ApiServer::start(const ServerOptions& o, grpc::Service& service,
                                                          std::function<void()> on_shutdown,
                                                          std::optional<AsyncServing> async, SocketLock lock) {
  std::unique_ptr<ApiServer> s(new ApiServer(o.socket_path, std::move(lock), std::move(on_shutdown)));
  grpc::ServerBuilder b;
  b.AddListeningPort("unix:" + o.socket_path, grpc::InsecureServerCredentials());
  std::string tcp;
  if (!o.tcp_listen.empty()) {
    auto addr = loopback_listen_address(o.tcp_listen);
    if (!addr) return core::error_of(addr);
    tcp = *addr;
    b.AddListeningPort(tcp, grpc::InsecureServerCredentials(), &s->tcp_port_);
  }
  b.RegisterService(&service);
  b.SetMaxReceiveMessageSize(o.max_message_bytes);
  b.SetMaxSendMessageSize(o.max_send_bytes);
  grpc::ResourceQuota quota("clovisd");
  quota.SetMaxThreads(kMaxThreads);
  b.SetResourceQuota(quota);
  if (async)
    for (unsigned i = 0; i < std::max(1u, async->threads); ++i) s->queues_.push_back(b.AddCompletionQueue());
  // The socket is created by bind(2) with 0777 & ~umask: never more than
  // 0660, not even until the chmod below.
  const mode_t old_mask = umask(0117);
  s->server_ = b.BuildAndStart();
  umask(old_mask);
  if (!s->server_) return core::fail(core::ErrorCode::kIo, "cannot listen (see the gRPC message above)", o.socket_path);
  // From here on shutdown() drains the queues, even when start fails below.
  if (async)
    for (auto& q : s->queues_) s->drainers_.emplace_back(async->drain, q.get());
  if (!tcp.empty() && s->tcp_port_ == 0)
    return core::fail(core::ErrorCode::kIo, "cannot listen (in use? see the gRPC message above)", tcp);
  if (auto st = set_owner(o.socket_path, o.group, &s->notes_); !st) return core::error_of(st);
  return s;
}

void ApiServer::shutdown(std::chrono::milliseconds grace) {
  if (!server_) return;
  if (on_shutdown_) on_shutdown_();
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  // After the server's shutdown, as gRPC requires: the drainers see their
  // pending calls fail, then the queues end.
  for (auto& q : queues_) q->Shutdown();
  for (auto& t : drainers_) t.join();
  drainers_.clear();
  server_->Wait();
  server_.reset();
  queues_.clear();
  // Still holding the lock: the socket is ours to remove.
  unlink(path_.c_str());
  lock_.reset();
}

ApiServer::~ApiServer() {
  shutdown();
}

}  // namespace clovis::agent::service
