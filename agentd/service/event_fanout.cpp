#include "event_fanout.hpp"

#include <pthread.h>

#include <algorithm>
#include <chrono>

#include "agent_service.hpp"
#include "convert.hpp"

namespace clovis::agent::service {

namespace {
// How long the thread waits for an event before it drops the watches that
// ended meanwhile, or sees that clovisd stops.
constexpr auto kEventPoll = std::chrono::milliseconds(100);
}  // namespace

EventFanout::EventFanout(const Agent& agent) : agent_(agent), thread_([this] { run(); }) {}

EventFanout::~EventFanout() {
  stop();
}

bool EventFanout::add(std::shared_ptr<Outbox<v1::LinkEventMsg>> out, uint64_t from) {
  std::lock_guard lock(mu_);
  if (stopping_) return false;
  watches_.push_back({std::move(out), from});
  return true;
}

void EventFanout::stop() {
  std::vector<Watch> all;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    all.swap(watches_);
  }
  if (thread_.joinable()) thread_.join();
  for (const auto& w : all) w.out->finish({grpc::StatusCode::UNAVAILABLE, "clovisd is stopping"});
}

void EventFanout::run() {
  pthread_setname_np(pthread_self(), "clovisd-events");
  uint64_t seen = 0;
  (void)agent_.events(&seen);
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      std::erase_if(watches_, [](const Watch& w) { return w.out->closed(); });
    }
    if (!agent_.wait_event(seen, kEventPoll)) continue;
    uint64_t last = 0;
    auto events = agent_.events(&last);
    deliver(events, last);
    seen = last;
  }
}

// events: the agent's last few, the newest numbered `last`.
void EventFanout::deliver(const std::vector<LinkChange>& events, uint64_t last) {
  const uint64_t first = last - events.size() + 1;  // the number of events[0]
  std::lock_guard lock(mu_);
  for (auto& w : watches_) {
    // The agent keeps the last few: a burst longer than that loses its oldest.
    for (uint64_t n = std::max(first, w.from + 1); n <= last; ++n) {
      v1::LinkEventMsg m;
      to_proto(events[n - first], &m);
      if (!w.out->push(std::move(m))) break;  // ended: dropped on the next round
      w.from = n;
    }
  }
}

}  // namespace clovis::agent::service
