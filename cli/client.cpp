#include "client.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "clovis/rpc/wire.hpp"
#include "exit_codes.hpp"
#include "render/diff.hpp"

namespace clovis::cli {

namespace {

constexpr const char* kStart = "start it: systemctl start clovisd";

std::string not_running(const std::string& why) {
  return fmt::format("clovisd is not running ({}); {}", why, kStart);
}

std::string denied(const std::string& path) {
  return fmt::format("permission denied on {}; join group clovis or use sudo", path);
}

// Connects once and hangs up: the only way to tell a live agent from a stale
// socket file left by one that died.
std::optional<std::string> probe_connect(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof(sa.sun_path))
    return fmt::format("socket path {} is too long (at most {} bytes)", path, sizeof(sa.sun_path) - 1);
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fmt::format("cannot create a socket: {}", std::strerror(errno));
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
  int err = errno;
  ::close(fd);
  if (rc == 0 || err == EAGAIN) return std::nullopt;  // EAGAIN: alive, its backlog is full
  switch (err) {
    case ECONNREFUSED: return not_running(fmt::format("stale socket {}: nothing listens on it", path));
    case EACCES:
    case EPERM: return denied(path);
    case ENOENT: return not_running(fmt::format("no socket at {}", path));
  }
  return fmt::format("cannot connect to clovisd at {}: {}", path, std::strerror(err));
}

std::string counts(int errors, int warnings) {
  std::string out;
  if (errors) out += fmt::format("{} error{}", errors, errors == 1 ? "" : "s");
  if (warnings) out += fmt::format("{}{} warning{}", errors ? ", " : "", warnings, warnings == 1 ? "" : "s");
  return out;
}

}  // namespace

std::optional<std::string> socket_problem(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    switch (errno) {
      case ENOENT:
      case ENOTDIR: return not_running(fmt::format("no socket at {}", path));
      case EACCES: return denied(path);
    }
    return fmt::format("cannot use socket {}: {}", path, std::strerror(errno));
  }
  if (!S_ISSOCK(st.st_mode))
    return fmt::format("{} is not a socket; point --socket or CLOVIS_SOCKET at clovisd's socket", path);
  return probe_connect(path);
}

ReadWatchdog::ReadWatchdog(grpc::ClientContext& cc, std::chrono::milliseconds limit)
    : thread_([this, &cc, limit] { run(cc, limit); }) {}

ReadWatchdog::~ReadWatchdog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ReadWatchdog::waiting(bool on) {
  {
    std::lock_guard lock(mu_);
    waiting_ = on;
    since_ = std::chrono::steady_clock::now();
  }
  if (on) cv_.notify_all();
}

bool ReadWatchdog::fired() const {
  std::lock_guard lock(mu_);
  return fired_;
}

void ReadWatchdog::run(grpc::ClientContext& cc, std::chrono::milliseconds limit) {
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (!waiting_) {
      cv_.wait(lock, [this] { return stop_ || waiting_; });
      continue;
    }
    const auto deadline = since_ + limit;
    if (std::chrono::steady_clock::now() >= deadline) {
      fired_ = true;
      cc.TryCancel();
      return;
    }
    cv_.wait_until(lock, deadline);
  }
}

Client::Client(Context& ctx, std::string command) : ctx_(ctx), command_(std::move(command)) {
  grpc::ChannelArguments args;
  // A flow listing from a clovisd older than the streamed one (a single
  // message) is far larger than gRPC's 4 MB default.
  args.SetMaxReceiveMessageSize(-1);
  auto channel = grpc::CreateCustomChannel("unix:" + ctx.socket, grpc::InsecureChannelCredentials(), args);
  stub_ = v1::Agent::NewStub(channel);
}

std::unique_ptr<Client> Client::open(Context& ctx, std::string command) {
  if (auto problem = socket_problem(ctx.socket)) {
    *ctx.err << "clovisctl: " << *problem << "\n";
    return nullptr;
  }
  return std::unique_ptr<Client>(new Client(ctx, std::move(command)));
}

void Client::fail(int code, const std::string& message) {
  *ctx_.err << "clovisctl " << command_ << ": " << message << "\n";
  failure_ = code;
}

bool Client::print_diagnostics(const grpc::ClientContext& cc) {
  const auto& trailers = cc.GetServerTrailingMetadata();
  auto it = trailers.find(rpc::kDiagnosticsTrailer);
  v1::Diagnostics diags;
  if (it == trailers.end() || !diags.ParseFromArray(it->second.data(), static_cast<int>(it->second.size())) ||
      diags.items().empty())
    return false;
  int errors = 0;
  for (const auto& x : diags.items()) errors += x.severity() != v1::SEVERITY_WARNING;
  const std::string file = diags.items(0).file().empty() ? "<mapping>" : diags.items(0).file();
  render::proto_diagnostics_text(*ctx_.err, diags.items(), file);
  *ctx_.err << fmt::format("{}: rejected by clovisd ({})\n", file, counts(errors, diags.items_size() - errors));
  return true;
}

bool Client::check(const grpc::Status& s, const grpc::ClientContext& cc) {
  if (s.ok()) return true;
  const int code = exit_code_for(s.error_code());
  const std::string& msg = s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
      if (print_diagnostics(cc)) failure_ = code;
      else fail(code, "rejected: " + msg);
      break;
    case grpc::StatusCode::UNAVAILABLE:
      // Either the agent went away (the socket says so) or it could not
      // write to the kernel and changed nothing (its message says so).
      if (auto problem = socket_problem(ctx_.socket)) fail(code, *problem);
      else fail(code, fmt::format("clovisd unavailable: {}", msg));
      break;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: fail(code, fmt::format("clovisd is busy: {}", msg)); break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      fail(code, fmt::format("clovisd did not answer within {}s on {}", kCallTimeout.count(), ctx_.socket));
      break;
    case grpc::StatusCode::UNIMPLEMENTED:
      fail(code, fmt::format("clovisd on {} does not implement this request; is it older than clovisctl {}?",
                             ctx_.socket, CLOVIS_VERSION));
      break;
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::DATA_LOSS:
      fail(code, fmt::format("clovisd internal error: {} (a bug; please report it)", msg));
      break;
    default:
      fail(code, msg.empty() ? fmt::format("failed with gRPC status {}", static_cast<int>(s.error_code())) : msg);
  }
  return false;
}

}  // namespace clovis::cli
