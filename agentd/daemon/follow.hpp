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

// At start-up: the last applied mapping restored (as the generation it
// was), then the file applied when its content differs. A missing,
// unreadable or rejected file is reported and clovisd starts anyway.
// False when clovisd cannot start (the kernel refused the restore).
bool start_following(Agent& agent, FileFollow& f, const std::string& state_dir);

// A due change of the file (or every time, `force`: SIGHUP) applied.
void follow_step(Agent& agent, FileFollow& f, bool force);

}  // namespace clovis::agent
