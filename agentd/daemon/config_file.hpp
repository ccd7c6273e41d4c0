// The config file (--config): the mapping chosen at start-up (clovisd(8),
// Start-up) and, with --follow-config, the file's changes applied as they
// come (agent/config_follow.hpp watches it), each reported in the log, as
// an event, in Status and in the metrics (clovisd(8), "Following the config
// file").
#pragma once

#include <memory>
#include <string>

#include "agent/agent.hpp"
#include "agent/config_follow.hpp"
#include "daemon/daemon.hpp"
#include "metrics/events.hpp"

namespace clovis::agent {

struct FileFollow {
  std::unique_ptr<ConfigFollower> follower;
  FollowStatus status;
  metrics::Events* events = nullptr;  // once the loop runs; counts nothing before
  // The hash of the file's content an auto-rollback rolled back, kept in the
  // state directory: a restart does not apply that content again.
  std::string rolled_back_path;
};

// Logs an apply's outcome, its diagnostics located in `source`.
void report(const core::Result<ApplyReport, core::Diagnostics>& r, const std::string& source);

// The mapping to start with: the config file, the persisted one, or none;
// with --follow-config (not --once) also the follower, in `follow`. False
// when clovisd cannot start.
bool start_mapping(const DaemonOptions& o, Agent& agent, std::unique_ptr<FileFollow>* follow);

// The resident loop's poll timeout, shortened to when a change settles.
int follow_timeout_ms(const FileFollow* follow, int timeout_ms);
// Each turn of the loop: the watch's events read when `readable`, a
// settled change applied.
void follow_poll(Agent& agent, FileFollow& f, bool readable);

// A due change of the file (or every time, `force`: SIGHUP) applied.
void follow_step(Agent& agent, FileFollow& f, bool force);

}  // namespace clovis::agent
