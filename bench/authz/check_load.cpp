// Open-loop load for an ext_authz v3 Check server over a Unix socket: N client
// threads (one gRPC stream in flight each, over a shared HTTP/2 channel as
// Envoy's ext_authz filter uses one per worker), each sending at rate/N on a
// fixed schedule. A request's latency is measured from the time it was *due*,
// not from when it went out, so a stalled server shows as latency instead of
// silently lowering the offered rate (no coordinated omission). The same
// requests' service time (sent -> answered: what a proxy's filter waits) and
// how late the client sent them (its own wake-up: timer slack is set to 1 ns,
// from the default 50 µs) are reported beside it.
//
//   check_load --socket PATH [--rate 5000] [--streams 8] [--seconds 10]
//              [--warmup 1] [--flows 1000] [--channels 1]
//   check_load --serve-noop PATH     a bare Check server (the peer: gRPC's own cost)
//
// Prints one JSON object: offered and achieved rate, latency percentiles (µs),
// answers by x-clovis-link, errors. bench/authz/run.py drives it; see
// docs/BENCHMARKS.md "Envoy Check latency".
#include <grpcpp/grpcpp.h>
#include <sys/prctl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "envoy/service/auth/v3/external_auth.grpc.pb.h"

namespace {

namespace authz = ::envoy::service::auth::v3;
using Clock = std::chrono::steady_clock;

// The requests: the mapping's L7 rule matches `end-user: minions` to
// 203.0.113.10:8000; every other request goes to the default. Source ports
// cycle over `flows` so the flow table sees updates as well as inserts.
authz::CheckRequest request(uint64_t i, uint32_t flows) {
  authz::CheckRequest r;
  auto* a = r.mutable_attributes();
  auto* src = a->mutable_source()->mutable_address()->mutable_socket_address();
  src->set_address("10.0.0.2");
  src->set_port_value(static_cast<uint32_t>(20000 + i % flows));
  auto* dst = a->mutable_destination()->mutable_address()->mutable_socket_address();
  dst->set_address("203.0.113.10");
  dst->set_port_value(8000);
  auto* http = a->mutable_request()->mutable_http();
  http->set_method("GET");
  http->set_host("video.example.com:8000");
  http->set_path(fmt::format("/v/{}", i % 97));
  auto& h = *http->mutable_headers();
  h["end-user"] = i % 2 ? "minions" : "boss";
  h["user-agent"] = "check_load/1";
  h["accept"] = "*/*";
  h["x-request-id"] = fmt::format("{:016x}", i * 0x9e3779b97f4a7c15ull);
  return r;
}

class Noop final : public authz::Authorization::Service {
 public:
  grpc::Status Check(grpc::ServerContext*, const authz::CheckRequest*, authz::CheckResponse* resp) override {
    resp->mutable_status()->set_code(0);
    auto* h = resp->mutable_ok_response()->add_headers();
    h->mutable_header()->set_key("x-clovis-link");
    h->mutable_header()->set_value("none");
    return grpc::Status::OK;
  }
};

class NoopCallback final : public authz::Authorization::CallbackService {
 public:
  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* ctx, const authz::CheckRequest*,
                                  authz::CheckResponse* resp) override {
    resp->mutable_status()->set_code(0);
    auto* h = resp->mutable_ok_response()->add_headers();
    h->mutable_header()->set_key("x-clovis-link");
    h->mutable_header()->set_value("none");
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
};

// An answer the size and shape of clovisd's: two headers set, one removed,
// six fields of dynamic metadata.
authz::CheckResponse clovis_like_answer() {
  authz::CheckResponse r;
  r.mutable_status()->set_code(0);
  auto* ok = r.mutable_ok_response();
  for (auto [k, v] : {std::pair{"x-clovis-link", "none"}, std::pair{"x-clovis-rule", "minions-video"}}) {
    auto* h = ok->add_headers();
    h->mutable_header()->set_key(k);
    h->mutable_header()->set_value(v);
    h->set_append_action(::envoy::config::core::v3::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
  }
  ok->add_headers_to_remove("x-clovis-error");
  auto& f = *(*r.mutable_dynamic_metadata()->mutable_fields())["clovis"].mutable_struct_value()->mutable_fields();
  f["action"].set_string_value("steer");
  f["link"].set_string_value("none");
  f["rule"].set_string_value("minions-video");
  f["policy"].set_string_value("");
  f["generation"].set_number_value(1);
  f["pinned"].set_bool_value(true);
  return r;
}

// gRPC's async API: `threads` threads, each draining a completion queue of
// its own and answering inline (no thread pool, no hand-off).
class NoopAsync {
 public:
  struct Call {
    grpc::ServerContext ctx;
    authz::CheckRequest req;
    grpc::ServerAsyncResponseWriter<authz::CheckResponse> writer{&ctx};
    bool answered = false;
  };

  void arm(grpc::ServerCompletionQueue* cq) {
    auto* c = new Call;
    svc.RequestCheck(&c->ctx, &c->req, &c->writer, cq, cq, c);
  }

  void run(grpc::ServerCompletionQueue* cq) {
    for (int i = 0; i < 8; ++i) arm(cq);
    void* tag = nullptr;
    bool ok = false;
    while (cq->Next(&tag, &ok)) {
      auto* c = static_cast<Call*>(tag);
      if (!ok || c->answered) {
        delete c;
        continue;
      }
      arm(cq);
      authz::CheckResponse resp;
      if (full_answer) {
        resp = clovis_like_answer();
      } else {
        resp.mutable_status()->set_code(0);
        auto* h = resp.mutable_ok_response()->add_headers();
        h->mutable_header()->set_key("x-clovis-link");
        h->mutable_header()->set_value("none");
      }
      c->answered = true;
      c->writer.Finish(resp, grpc::Status::OK, c);
    }
  }

  authz::Authorization::AsyncService svc;
  bool full_answer = false;
};

int serve_noop(const std::string& path, bool callback, unsigned async_threads, bool full_answer) {
  Noop sync_svc;
  NoopCallback cb_svc;
  NoopAsync async_svc;
  async_svc.full_answer = full_answer;
  grpc::Service& svc = async_threads ? static_cast<grpc::Service&>(async_svc.svc)
                       : callback    ? static_cast<grpc::Service&>(cb_svc)
                                     : static_cast<grpc::Service&>(sync_svc);
  grpc::ServerBuilder b;
  b.AddListeningPort("unix:" + path, grpc::InsecureServerCredentials());
  b.RegisterService(&svc);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
  for (unsigned i = 0; i < async_threads; ++i) cqs.push_back(b.AddCompletionQueue());
  auto server = b.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "check_load: cannot listen on %s\n", path.c_str());
    return 1;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::vector<std::thread> workers;
  for (auto& cq : cqs) workers.emplace_back([&async_svc, q = cq.get()] { async_svc.run(q); });
  std::fprintf(stderr, "check_load: noop Check server on %s\n", path.c_str());
  int sig = 0;
  sigwait(&set, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  for (auto& cq : cqs) cq->Shutdown();
  for (auto& w : workers) w.join();
  return 0;
}

struct Sample {
  uint32_t us_x10;       // latency from when the request was due, in 0.1 µs
  uint32_t service_x10;  // from when it was sent
  bool ok;
};

double percentile(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[i] / 10.0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Open-loop ext_authz Check load over a Unix socket", "check_load");
  std::string socket, noop;
  bool noop_callback = false;
  unsigned noop_async = 0;
  bool noop_full = false;
  double rate = 5000, seconds = 10, warmup = 1;
  unsigned streams = 8, channels = 1;
  uint32_t flows = 1000;
  app.add_option("--socket", socket, "Check server's Unix socket");
  app.add_option("--serve-noop", noop, "Serve a bare Check (the peer) on this socket until SIGTERM");
  app.add_flag("--callback", noop_callback, "The bare Check server uses gRPC's callback API (else the sync one)");
  app.add_option("--async", noop_async, "The bare Check server uses gRPC's async API with this many threads");
  app.add_flag("--clovis-answer", noop_full, "The async bare server answers as clovisd does (headers, metadata)");
  app.add_option("--rate", rate, "Requests per second, all streams together")->check(CLI::PositiveNumber);
  app.add_option("--streams", streams, "Concurrent streams (client threads)")->check(CLI::Range(1u, 256u));
  app.add_option("--channels", channels, "HTTP/2 connections the streams share")->check(CLI::Range(1u, 256u));
  app.add_option("--seconds", seconds, "Measured time")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "Unmeasured time first")->check(CLI::NonNegativeNumber);
  app.add_option("--flows", flows, "Distinct reported connections (source ports)")->check(CLI::Range(1u, 40000u));
  CLI11_PARSE(app, argc, argv);
  if (!noop.empty()) return serve_noop(noop, noop_callback, noop_async, noop_full);
  if (socket.empty()) {
    std::fprintf(stderr, "check_load: --socket or --serve-noop is required\n");
    return 2;
  }

  std::vector<std::shared_ptr<grpc::Channel>> chans;
  for (unsigned c = 0; c < channels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("clovis.bench.channel", static_cast<int>(c));  // distinct args: distinct connections
    chans.push_back(grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(), args));
    if (!chans.back()->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
      std::fprintf(stderr, "check_load: cannot connect to %s\n", socket.c_str());
      return 1;
    }
  }

  const auto per_stream = std::chrono::duration<double>(static_cast<double>(streams) / rate);
  const auto t0 = Clock::now() + std::chrono::milliseconds(50);
  const auto measure_from = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup));
  const auto end = measure_from + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::vector<Sample>> samples(streams);
  std::vector<std::map<std::string, uint64_t>> links(streams);
  std::vector<std::map<std::string, uint64_t>> errors(streams);
  std::vector<std::thread> threads;
  for (unsigned s = 0; s < streams; ++s) {
    threads.emplace_back([&, s] {
      // sleep_until would otherwise wake up to 50 µs late (the default timer
      // slack), which counts as latency here.
      prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
      auto stub = authz::Authorization::NewStub(chans[s % channels]);
      // Streams start staggered so the offered load is even, not bursts of N.
      auto due = t0 + std::chrono::duration_cast<Clock::duration>(per_stream * (static_cast<double>(s) / streams));
      for (uint64_t n = 0;; ++n) {
        if (due >= end) break;
        std::this_thread::sleep_until(due);
        const auto sent = Clock::now();
        const auto req = request(n * streams + s, flows);
        authz::CheckResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        const grpc::Status st = stub->Check(&ctx, req, &resp);
        const auto done = Clock::now();
        if (due >= measure_from) {
          auto x10 = [](Clock::duration d) {
            const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
            return static_cast<uint32_t>(std::clamp<int64_t>(ns / 100, 0, UINT32_MAX));
          };
          samples[s].push_back({x10(done - due), x10(done - sent), st.ok()});
          if (!st.ok()) {
            ++errors[s][fmt::format("{}: {}", static_cast<int>(st.error_code()), st.error_message())];
          } else {
            std::string link = "-";
            for (const auto& h : resp.ok_response().headers())
              if (h.header().key() == "x-clovis-link") link = h.header().value();
            ++links[s][link];
          }
        }
        due += std::chrono::duration_cast<Clock::duration>(per_stream);
      }
    });
  }
  for (auto& t : threads) t.join();

  std::vector<uint32_t> lat, service;
  uint64_t ok = 0;
  nlohmann::json by_link = nlohmann::json::object(), errs = nlohmann::json::object();
  for (unsigned s = 0; s < streams; ++s) {
    for (const Sample& x : samples[s]) {
      lat.push_back(x.us_x10);
      service.push_back(x.service_x10);
      ok += x.ok;
    }
    for (const auto& [k, v] : links[s]) by_link[k] = by_link.value(k, uint64_t{0}) + v;
    for (const auto& [k, v] : errors[s]) errs[k] = errs.value(k, uint64_t{0}) + v;
  }
  std::sort(lat.begin(), lat.end());
  std::sort(service.begin(), service.end());
  auto percentiles = [](const std::vector<uint32_t>& v) {
    return nlohmann::json{{"p50", percentile(v, 50)},
                          {"p90", percentile(v, 90)},
                          {"p99", percentile(v, 99)},
                          {"p99.9", percentile(v, 99.9)},
                          {"max", v.empty() ? 0.0 : v.back() / 10.0}};
  };
  nlohmann::json out = {
      {"socket", socket},
      {"streams", streams},
      {"channels", channels},
      {"offered_rps", rate},
      {"seconds", seconds},
      {"requests", lat.size()},
      {"ok", ok},
      {"achieved_rps", static_cast<double>(lat.size()) / seconds},
      {"latency_us", percentiles(lat)},
      {"service_us", percentiles(service)},
      {"links", by_link},
      {"errors", errs},
  };
  std::printf("%s\n", out.dump().c_str());
  return ok == lat.size() && !lat.empty() ? 0 : 1;
}
