#include "daemon/follow.hpp"

#include <fmt/format.h>

#include "log/log.hpp"

namespace clovis::agent {

namespace {

// The first error, on one line: "path:line:col: error: message [where]; hint".
std::string first_error(const core::Diagnostics& d, const std::string& path) {
  for (const auto& x : d.items()) {
    if (x.severity != core::Severity::kError) continue;
    std::string line = core::format_diagnostic(x, path);
    if (auto at = line.find("\n  hint: "); at != std::string::npos) line.replace(at, 9, "; hint: ");
    return line;
  }
  return path + ": rejected";
}

void count(const FileFollow& f, metrics::FileApplyResult r) {
  if (f.events) f.events->note_file_apply(r);
}

// One outcome of the file: Status, an event, the metric. The log has the
// apply's own lines already (on_apply), except for an unreadable file.
void record(Agent& agent, FileFollow& f, FileState s, metrics::FileApplyResult r) {
  const FileState was = f.status.get();
  s.time_unix_ms = now_unix_ms();
  const uint32_t running = agent.generation();
  std::string reason;
  switch (r) {
    case metrics::FileApplyResult::kApplied:
      reason = fmt::format("{} ({}) runs as generation {}", s.path, s.hash, s.generation);
      break;
    case metrics::FileApplyResult::kUnreadable:
      // Logged once per reason: a directory that is gone is retried often.
      if (was.result == s.result && was.error == s.error) return;
      log_error(fmt::format("{}; generation {} keeps running", s.error, running));
      [[fallthrough]];
    default:
      reason = fmt::format("{}; generation {} keeps running", s.error, running);
  }
  count(f, r);
  agent.note_event(config_event(s.time_unix_ms, s.result, reason));
  f.status.set(std::move(s));
}

ApplyResult apply_change(Agent& agent, FileFollow& f, ConfigFollower::Change c) {
  FileState s = f.status.get();
  s.path = f.follower->path();
  s.hash = c.hash;
  s.error.clear();
  // The same path as `clovisctl apply`; the source is the file's path, as
  // for the mapping applied at start-up and on SIGHUP.
  auto r = agent.submit(c.text, s.path, {});
  if (r) {
    s.result = "applied";
    s.generation = r->report.generation;
    record(agent, f, std::move(s), metrics::FileApplyResult::kApplied);
    return r;
  }
  const bool rejected = r.error().kind == ApplyFailure::kRejected;
  s.result = rejected ? "rejected" : "failed";
  s.error = rejected ? first_error(r.error().diagnostics, s.path) : s.path + ": " + r.error().message();
  record(agent, f, std::move(s), rejected ? metrics::FileApplyResult::kRejected : metrics::FileApplyResult::kFailed);
  return r;
}

}  // namespace

void follow_step(Agent& agent, FileFollow& f, bool force) {
  auto c = f.follower->take(ConfigFollower::Clock::now(), force);
  if (!c) {
    FileState s = f.status.get();
    s.path = f.follower->path();
    s.result = "unreadable";
    s.error = c.error().what();
    return record(agent, f, std::move(s), metrics::FileApplyResult::kUnreadable);
  }
  if (*c) (void)apply_change(agent, f, std::move(**c));  // logged by the apply hook
}

bool start_following(Agent& agent, FileFollow& f, const std::string& state_dir) {
  const std::string persisted_path = state_dir + "/mapping.yaml";
  const std::string& path = f.follower->path();
  auto text = core::read_file(path);
  if (!text) {
    log_warning(fmt::format("{}; starting with the last applied mapping, the file is applied when it appears",
                            text.error().what()));
    FileState s;
    s.path = path;
    s.result = "unreadable";
    s.error = text.error().what();
    s.time_unix_ms = now_unix_ms();
    f.status.set(std::move(s));
  } else {
    const std::string hash = content_hash(*text);
    f.follower->seen(hash);
    auto persisted = core::read_file(persisted_path);
    if (!persisted || *persisted != *text) {
      // No apply hook yet (the loop sets it): the outcome is logged here.
      auto r = apply_change(agent, f, {*text, hash});
      const auto& diags = r ? r->report.diagnostics : r.error().diagnostics;
      for (const auto& d : diags.items()) log_diagnostic(d, path);
      if (r) {
        for (const auto& n : r->report.notes) log_warning(n);
        log_info(fmt::format("applied {} as generation {}", path, r->report.generation));
        return true;
      }
      log_error(fmt::format("{}: {}; starting with the last applied mapping instead", path,
                            r.error().kind == ApplyFailure::kRejected ? "rejected" : r.error().message()));
    }
  }
  auto r = agent.restore();
  if (!r) {
    for (const auto& d : r.error().items()) log_diagnostic(d, persisted_path);
    return false;
  }
  if (!*r) {
    log_info("no mapping yet: traffic passes unsteered until one is applied");
    return true;
  }
  log_info(fmt::format("restored generation {} from the state directory", (*r)->generation));
  if (text && f.status.get().result.empty())  // the file is what was restored
  {
    FileState s;
    s.path = path;
    s.hash = content_hash(*text);
    s.result = "applied";
    s.generation = (*r)->generation;
    s.time_unix_ms = now_unix_ms();
    f.status.set(std::move(s));
  }
  return true;
}

}  // namespace clovis::agent
