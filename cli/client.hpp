// clovisctl's side of the agent API: a gRPC channel to clovisd's Unix socket,
// a deadline on every call, and failed calls turned into one clear message
// and a documented exit code.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "app.hpp"
#include "clovis/v1/agent.grpc.pb.h"
#include "clovis/v1/agent.pb.h"
#include "exit_codes.hpp"

namespace clovis::cli {

// Why clovisctl cannot talk to a clovisd on `path`, as the one line to print
// (without the "clovisctl: " prefix); nullopt when something accepts
// connections there. Checked before gRPC connects, whose own failure would
// only say "failed to connect to all addresses".
std::optional<std::string> socket_problem(const std::string& path);

// Cancels a streaming call when one Read waits longer than `limit` for the
// next message. (A deadline on the whole call would cut a long listing
// short while its output is slow to drain, as under `clovisctl flows | less`.)
class ReadWatchdog {
 public:
  ReadWatchdog(grpc::ClientContext& cc, std::chrono::milliseconds limit);
  ~ReadWatchdog();
  ReadWatchdog(const ReadWatchdog&) = delete;
  ReadWatchdog& operator=(const ReadWatchdog&) = delete;
  // Around each Read.
  void waiting(bool on);
  // Whether it cancelled the call.
  bool fired() const;

 private:
  void run(grpc::ClientContext& cc, std::chrono::milliseconds limit);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, waiting_ = false, fired_ = false;
  std::chrono::steady_clock::time_point since_;
  std::thread thread_;
};

class Client {
 public:
  // Every unary call gets this long, and every wait for the next message of
  // a stream; a 10k-rule apply takes a second at most, and a listing's
  // chunks come every few milliseconds.
  static constexpr std::chrono::seconds kCallTimeout{30};

  // Checks the socket, then creates the channel. On a problem prints one line
  // on ctx.err and returns null; the command then exits kExitUnavailable.
  // `command` names the command in later messages ("apply").
  static std::unique_ptr<Client> open(Context& ctx, std::string command);

  template <class Req, class Resp>
  using Unary = grpc::Status (v1::Agent::Stub::*)(grpc::ClientContext*, const Req&, Resp*);

  // One call with the deadline. On failure reports it (see check) and
  // returns false.
  template <class Req, class Resp>
  bool call(Unary<Req, Resp> method, const Req& req, Resp* resp) {
    grpc::ClientContext cc;
    cc.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    grpc::Status s = (stub_.get()->*method)(&cc, req, resp);
    return check(s, cc);
  }

  template <class Req, class Resp>
  using ServerStream = std::unique_ptr<grpc::ClientReader<Resp>> (v1::Agent::Stub::*)(grpc::ClientContext*, const Req&);

  // A server-streaming call that ends: `each` gets every message (the same
  // object each time, refilled, so that its memory is reused). On failure,
  // also midway, reports it (see check) and returns false.
  template <class Req, class Resp, class Each>
  bool stream(ServerStream<Req, Resp> method, const Req& req, Each&& each) {
    grpc::ClientContext cc;
    ReadWatchdog dog(cc, kCallTimeout);
    auto reader = (stub_.get()->*method)(&cc, req);
    Resp msg;
    for (;;) {
      dog.waiting(true);
      const bool got = reader->Read(&msg);
      dog.waiting(false);
      if (!got) break;
      each(msg);
    }
    grpc::Status s = reader->Finish();
    if (dog.fired()) s = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "no message within the timeout");
    return check(s, cc);
  }

  // True when `s` is OK. Otherwise prints what went wrong on ctx.err — for
  // INVALID_ARGUMENT the located diagnostics from the trailer, formatted as
  // `clovisctl validate` prints them — and keeps the exit code for failure().
  bool check(const grpc::Status& s, const grpc::ClientContext& cc);

  // The exit code of the last failed call (see check), for the command to
  // return.
  int failure() const { return failure_; }

  // For streaming calls, which manage their own ClientContext.
  v1::Agent::Stub& stub() { return *stub_; }
  const std::string& socket() const { return ctx_.socket; }

 private:
  Client(Context& ctx, std::string command);
  void fail(int code, const std::string& message);
  bool print_diagnostics(const grpc::ClientContext& cc);

  Context& ctx_;
  std::string command_;
  std::unique_ptr<v1::Agent::Stub> stub_;
  int failure_ = kExitInternal;  // until a call fails
};

// A read command: opens a client, makes the one call and, when it succeeds,
// renders the response; returns the command's exit code.
template <class Req, class Resp, class Render>
int read_command(Context& ctx, std::string command, Client::Unary<Req, Resp> method, const Req& req, Render&& render) {
  auto client = Client::open(ctx, std::move(command));
  if (!client) return kExitUnavailable;
  Resp resp;
  if (!client->call(method, req, &resp)) return client->failure();
  render(resp);
  return kExitOk;
}

}  // namespace clovis::cli
