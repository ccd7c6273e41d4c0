// WatchEvents' producer: one thread waits for the agent's link events and
// queues each to every open events watch (watch_stream.hpp), so that an
// events watch holds no thread while nothing happens.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "agent/agent.hpp"
#include "clovis/v1/agent.pb.h"
#include "watch_stream.hpp"

namespace clovis::agent::service {

class EventFanout {
 public:
  explicit EventFanout(const Agent& agent);
  ~EventFanout();
  EventFanout(const EventFanout&) = delete;
  EventFanout& operator=(const EventFanout&) = delete;

  // Streams to `out` the events after the agent's event number `from`
  // (Agent::events(&seq)); false when stopping.
  bool add(std::shared_ptr<Outbox<v1::LinkEventMsg>> out, uint64_t from);
  // Ends every events watch (UNAVAILABLE: clovisd is stopping). Idempotent.
  void stop();

 private:
  struct Watch {
    std::shared_ptr<Outbox<v1::LinkEventMsg>> out;
    uint64_t from;  // events up to this number were before the watch
  };
  void run();
  void deliver(const std::vector<LinkChange>& events, uint64_t last);

  const Agent& agent_;
  std::mutex mu_;
  std::vector<Watch> watches_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace clovis::agent::service
