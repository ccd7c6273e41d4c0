// clovisctl's side of the agent API: a gRPC channel to clovisd's Unix socket,
// a deadline on every call, and failed calls turned into one clear message
// and a documented exit code.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "app.hpp"
#include "clovis/v1/agent.grpc.pb.h"
#include "clovis/v1/agent.pb.h"

namespace clovis::cli {

// The trailing metadata key under which clovisd returns a serialized
// clovis.v1.Diagnostics with INVALID_ARGUMENT.
inline constexpr const char* kDiagnosticsTrailer = "clovis-diagnostics-bin";

// Why clovisctl cannot talk to a clovisd on `path`, as the one line to print
// (without the "clovisctl: " prefix); nullopt when something accepts
// connections there. Checked before gRPC connects, whose own failure would
// only say "failed to connect to all addresses".
std::optional<std::string> socket_problem(const std::string& path);

// clovisctl's exit code for a failed call (cli/exit_codes.hpp).
int exit_code_for(grpc::StatusCode code);

class Client {
 public:
  // Every unary call gets this long; a 10k-rule apply or a 1M-flow listing
  // takes a few seconds at most.
  static constexpr std::chrono::seconds kCallTimeout{30};

  // Checks the socket, then creates the channel. On a problem prints one line
  // on ctx.err, sets ctx.exit_code = kExitUnavailable and returns null.
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

  // True when `s` is OK. Otherwise prints what went wrong on ctx.err — for
  // INVALID_ARGUMENT the located diagnostics from the trailer, formatted as
  // `clovisctl validate` prints them — and sets ctx.exit_code.
  bool check(const grpc::Status& s, const grpc::ClientContext& cc);

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
};

}  // namespace clovis::cli
