// clovisd --follow-config: the config file's changes applied as they come
// (agent/config_follow.hpp watches it), each reported in the log, as an
// event, in Status and in the metrics. See clovisd(8), "Following the
// config file".
#pragma once

#include <memory>
#include <string>

#include "agent/agent.hpp"
#include "agent/config_follow.hpp"
#include "metrics/events.hpp"

namespace clovis::agent {

struct FileFollow {
  std::unique_ptr<ConfigFollower> follower;
  FollowStatus status;
  metrics::Events* events = nullptr;  // once the loop runs; counts nothing before
};

// At start-up: the file's mapping, unless it is what the state directory
// holds already (restored: same generation, the flows keep their links),
// missing, unreadable or rejected (reported; the persisted mapping runs).
// False when clovisd cannot start (the persisted mapping failed too).
bool start_following(Agent& agent, FileFollow& f, const std::string& state_dir);

// A due change of the file (or every time, `force`: SIGHUP) applied.
void follow_step(Agent& agent, FileFollow& f, bool force);

}  // namespace clovis::agent
