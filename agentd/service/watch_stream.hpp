// The agent API's watch streams (WatchFlows, WatchEvents) on gRPC's callback
// API: a stream holds no thread while it waits, so that hundreds of
// `clovisctl flows --watch` leave the sync server's threads to the unary
// calls operators need (status, apply, confirm, rollback; issue #13).
//
// A WatchStream is the gRPC reactor of one stream; its Outbox is what the
// producers (WatchHub's threads) hold: messages are queued there and written
// one at a time as gRPC reports each write done. The Outbox outlives the
// reactor, so a producer may push to a stream that has ended (push says so).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_callback.h>

namespace clovis::agent::service {

template <typename Msg>
class WatchStream;

template <typename Msg>
class Outbox {
 public:
  // Queues `m`; false once the stream ends (client gone, finish called).
  bool push(Msg m) {
    const Msg* start = nullptr;
    WatchStream<Msg>* s = nullptr;
    {
      std::lock_guard lock(mu_);
      if (ending_ || !stream_) return false;
      bytes_ += m.ByteSizeLong();
      queue_.push_back(std::move(m));
      if (!writing_) {
        writing_ = true;
        start = &queue_.front();  // a deque keeps its elements in place as it grows
        s = stream_;
      }
    }
    // Outside the lock: gRPC may call back into OnWriteDone from here. The
    // stream cannot be gone: it finishes only once no write is in flight.
    if (start) s->StartWrite(start);
    return true;
  }

  // Ends the stream with `st` once what is queued is written (at once when
  // the client has gone). Only the first call counts.
  void finish(grpc::Status st) {
    WatchStream<Msg>* now = nullptr;
    {
      std::lock_guard lock(mu_);
      if (ending_) return;
      ending_ = true;
      status_ = std::move(st);
      if (!writing_ && stream_ && !finished_) {
        finished_ = true;
        now = stream_;
      }
    }
    cv_.notify_all();
    if (now) now->Finish(status_);
  }

  // True once the stream ends or is ending: producers stop.
  bool closed() const {
    std::lock_guard lock(mu_);
    return ending_ || !stream_;
  }

  // Waits until less than `bytes` wait to be written; false when the stream
  // ended, or `limit` passed first (the client does not read).
  bool wait_below(size_t bytes, std::chrono::milliseconds limit) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, limit, [&] { return ending_ || !stream_ || bytes_ < bytes; });
    return !ending_ && stream_ && bytes_ < bytes;
  }
  size_t queued_bytes() const {
    std::lock_guard lock(mu_);
    return bytes_;
  }

 private:
  friend class WatchStream<Msg>;

  // From the reactor.
  void write_done(bool ok) {
    const Msg* next = nullptr;
    WatchStream<Msg>* s = nullptr;
    WatchStream<Msg>* fin = nullptr;
    {
      std::lock_guard lock(mu_);
      bytes_ -= queue_.front().ByteSizeLong();
      queue_.pop_front();
      if (!ok) {  // the client went away: nothing more gets through
        queue_.clear();
        bytes_ = 0;
        if (!ending_) status_ = grpc::Status::CANCELLED;
        ending_ = true;
      }
      if (!queue_.empty()) {
        next = &queue_.front();
        s = stream_;
      } else {
        writing_ = false;
        if (ending_ && !finished_) {
          finished_ = true;
          fin = stream_;
        }
      }
    }
    cv_.notify_all();
    if (next) s->StartWrite(next);
    if (fin) fin->Finish(status_);
  }
  void done() {
    {
      std::lock_guard lock(mu_);
      stream_ = nullptr;
      ending_ = true;
      queue_.clear();
      bytes_ = 0;
    }
    cv_.notify_all();
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  WatchStream<Msg>* stream_ = nullptr;  // until gRPC is done with it
  std::deque<Msg> queue_;               // front: being written while writing_
  size_t bytes_ = 0;
  bool writing_ = false;
  bool ending_ = false;
  bool finished_ = false;  // Finish called
  grpc::Status status_;
};

// One watch stream. Created by the service method and deleted by gRPC's
// OnDone; `on_done` runs then (it gives the stream's slot back).
template <typename Msg>
class WatchStream final : public grpc::ServerWriteReactor<Msg> {
 public:
  explicit WatchStream(std::function<void()> on_done)
      : out_(std::make_shared<Outbox<Msg>>()), on_done_(std::move(on_done)) {
    out_->stream_ = this;
  }
  // A stream refused outright (e.g. RESOURCE_EXHAUSTED).
  static WatchStream* refuse(grpc::Status st) {
    auto* s = new WatchStream({});
    s->out_->finish(std::move(st));
    return s;
  }
  const std::shared_ptr<Outbox<Msg>>& outbox() const { return out_; }
  // Tells the client the watch is on before anything is written. Only from
  // the service method, before it returns the stream (nothing can have
  // finished it yet).
  void start() { this->StartSendInitialMetadata(); }

  void OnWriteDone(bool ok) override { out_->write_done(ok); }
  void OnCancel() override { out_->finish(grpc::Status::CANCELLED); }
  void OnDone() override {
    out_->done();
    if (on_done_) on_done_();
    delete this;
  }

 private:
  std::shared_ptr<Outbox<Msg>> out_;
  std::function<void()> on_done_;
};

}  // namespace clovis::agent::service
