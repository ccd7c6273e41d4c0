#include "watch_hub.hpp"

#include <pthread.h>

#include <algorithm>

#include <fmt/format.h>

namespace clovis::agent::service {

WatchHub::WatchHub(size_t max_watchers, unsigned threads) : max_(max_watchers) {
  for (unsigned i = 0; i < std::max(1u, threads); ++i) threads_.emplace_back([this] { work(); });
}

WatchHub::~WatchHub() {
  stop();
}

bool WatchHub::take_slot() {
  size_t n = open_.load();
  do {
    if (n >= max_) return false;
  } while (!open_.compare_exchange_weak(n, n + 1));
  return true;
}

void WatchHub::give_slot() {
  open_.fetch_sub(1);
}

grpc::Status WatchHub::refusal() const {
  return {grpc::StatusCode::RESOURCE_EXHAUSTED,
          fmt::format("clovisd serves at most {} watch streams at once (flows --watch, events --watch) and all "
                      "are open: end one, or raise clovisd --max-watchers",
                      max_)};
}

bool WatchHub::schedule(std::shared_ptr<WatchTask> t) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    tasks_.insert(t);
    due_.push({WatchTask::Clock::now(), order_++, std::move(t)});
  }
  cv_.notify_one();
  return true;
}

bool WatchHub::stopping() const {
  std::lock_guard lock(mu_);
  return stopping_;
}

void WatchHub::stop() {
  std::set<std::shared_ptr<WatchTask>> all;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    all = tasks_;
  }
  cv_.notify_all();
  // Also wakes a thread waiting for a slow client to read.
  const grpc::Status stopping{grpc::StatusCode::UNAVAILABLE, "clovisd is stopping"};
  for (const auto& t : all) t->end(stopping);
  for (auto& th : threads_)
    if (th.joinable()) th.join();
  std::lock_guard lock(mu_);
  due_ = {};
  tasks_.clear();
}

void WatchHub::work() {
  pthread_setname_np(pthread_self(), "clovisd-watch");
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (due_.empty()) {
      cv_.wait(lock);
      continue;
    }
    if (const auto at = due_.top().at; at > WatchTask::Clock::now()) {
      cv_.wait_until(lock, at);
      continue;
    }
    auto t = due_.top().task;
    due_.pop();
    lock.unlock();
    const auto next = t->run();
    lock.lock();
    if (next && !stopping_) due_.push({*next, order_++, std::move(t)});
    else tasks_.erase(t);
  }
}

}  // namespace clovis::agent::service
