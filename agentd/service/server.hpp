// clovisd's gRPC servers (the agent API, the ext_authz Authorization service)
// on Unix sockets; a TCP listener only when asked for, and only on a loopback
// address (the ext_authz service, for a proxy that cannot reach the socket,
// e.g. in a container without it mounted). One server
// per socket path: gRPC unlinks whatever socket is at the path when it binds,
// so it would silently take over a live agent's socket; PATH.lock (flock)
// refuses a second one first. The socket is mode 0660, group `clovis` (the
// ext_authz socket: `clovis-proxy`) when that group exists, so that its
// members can use it without root.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "agent_service.hpp"
#include "core/fd.hpp"
#include "core/result.hpp"
#include "request_limits.hpp"

namespace clovis::agent::service {

inline constexpr const char* kDefaultSocket = "/run/clovis/clovisd.sock";
inline constexpr const char* kDefaultAuthzSocket = "/run/clovis/authz.sock";

inline constexpr const char* kDefaultGroup = "clovis";
inline constexpr const char* kDefaultAuthzGroup = "clovis-proxy";

struct ServerOptions {
  std::string socket_path = kDefaultSocket;
  std::string group = kDefaultGroup;                              // the socket's group, when it exists
  int max_message_bytes = static_cast<int>(kMaxApiMessageBytes);  // the largest received
  // Also listen on TCP here: "127.0.0.1:PORT" (any 127/8 address) or
  // "[::1]:PORT"; PORT 0 picks a free one. Empty: Unix socket only.
  std::string tcp_listen = {};
  // The largest sent; -1: no limit (History carries up to ten mappings,
  // and clovisctl takes any size).
  int max_send_bytes = -1;
};

// Checks that `spec` is a loopback ADDR:PORT; the gRPC address to bind.
core::Result<std::string> loopback_listen_address(const std::string& spec);

// PATH.lock, held with flock(2) for as long as the server may use PATH.
// Taken early (before clovisd touches the kernel), so that a second clovisd
// for the same socket stops before it does anything.
class SocketLock {
 public:
  // Creates the socket's directory if needed; refuses a path that exists and
  // is not a socket.
  static core::Result<SocketLock> take(const std::string& socket_path);

 private:
  explicit SocketLock(core::Fd fd) : fd_(std::move(fd)) {}
  core::Fd fd_;
};

// How an async service is served: `threads` threads, each draining a
// completion queue of its own with `drain`, which answers calls inline and
// returns once its queue is shut down and empty. No thread pool and no
// hand-off between threads: for a short unary call (ext_authz Check) that is
// ~30 µs less per call than gRPC's sync server on a 2-vCPU host
// (docs/BENCHMARKS.md, "Envoy Check latency").
struct AsyncServing {
  unsigned threads = 1;
  std::function<void(grpc::ServerCompletionQueue*)> drain;
  // Runs first in shutdown(): once it returns, no drainer asks for another
  // call (asking on a queue that is shut down aborts the process).
  std::function<void()> stop;
};

class ApiServer {
 public:
  // Binds (with the lock held) and starts serving `service` on gRPC's own
  // threads. `on_shutdown` runs first thing in shutdown() (ends streams).
  static core::Result<std::unique_ptr<ApiServer>> start(const ServerOptions& o, grpc::Service& service,
                                                        std::function<void()> on_shutdown, SocketLock lock);
  // An async service, served as `async` says.
  static core::Result<std::unique_ptr<ApiServer>> start(const ServerOptions& o, grpc::Service& service,
                                                        AsyncServing async, SocketLock lock);
  // The agent API: as above, ending its streams on shutdown.
  static core::Result<std::unique_ptr<ApiServer>> start(const ServerOptions& o, AgentService& service, SocketLock lock);
  // Takes the lock, then as above.
  static core::Result<std::unique_ptr<ApiServer>> start(const ServerOptions& o, AgentService& service);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Ends streams, lets running calls finish for up to `grace`, cancels the
  // rest, and removes the socket. Idempotent.
  void shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));

  const std::string& path() const { return path_; }
  // The TCP port bound for ServerOptions::tcp_listen; 0 when none.
  int tcp_port() const { return tcp_port_; }
  // Things worth logging (e.g. no group clovis: only root can connect).
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  ApiServer(std::string path, SocketLock lock, std::function<void()> on_shutdown)
      : path_(std::move(path)), lock_(std::move(lock)), on_shutdown_(std::move(on_shutdown)) {}
  static core::Result<std::unique_ptr<ApiServer>> start(const ServerOptions& o, grpc::Service& service,
                                                        std::function<void()> on_shutdown,
                                                        std::optional<AsyncServing> async, SocketLock lock);

  std::string path_;
  int tcp_port_ = 0;
  std::optional<SocketLock> lock_;
  std::function<void()> on_shutdown_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;  // async serving only
  std::vector<std::thread> drainers_;
  std::vector<std::string> notes_;
};

}  // namespace clovis::agent::service
