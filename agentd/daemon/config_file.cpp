#include "daemon/config_file.hpp"

#include <algorithm>
#include <filesystem>

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
    default: reason = fmt::format("{}; generation {} keeps running", s.error, running);
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
    std::error_code ec;
    std::filesystem::remove(f.rolled_back_path, ec);  // this content is wanted (again)
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

void report(const core::Result<ApplyReport, core::Diagnostics>& r, const std::string& source) {
  if (!r) {
    for (const auto& d : r.error().items()) log_diagnostic(d, source);
    log_error(fmt::format("{}: rejected; the running rule set is unchanged", source));
    return;
  }
  for (const auto& d : r->diagnostics.items()) log_diagnostic(d, source);
  for (const auto& n : r->notes) log_warning(n);
  log_info(
      fmt::format("applied {} as generation {}: {} table entries in bank {} ({:.2f} ms kernel writes, {:.1f} ms total)",
                  source, r->generation, r->stats.entries_written, r->stats.bank, r->stats.write_ms, r->total_ms));
}

namespace {

// Which mapping to start with: the config file when it is newer than the
// last applied one (someone edited it), else the last applied.
bool start_from_config(const DaemonOptions& o) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(o.config, ec)) return false;
  auto persisted = o.agent.state_dir + "/mapping.yaml";
  if (!fs::exists(persisted, ec) || o.config_explicit) return true;
  return fs::last_write_time(o.config, ec) > fs::last_write_time(persisted, ec);
}

// The config file, the persisted mapping, or none (see clovisd(8), Start-up).
bool start_without_following(const DaemonOptions& o, Agent& agent) {
  if (start_from_config(o)) {
    auto text = core::read_file(o.config);
    if (!text) {
      log_error(text.error().what());
      return false;
    }
    auto r = agent.apply(*text, o.config);
    report(r, o.config);
    return r.ok();
  }
  if (o.config_explicit) {
    log_error(fmt::format("config {} does not exist", o.config));
    return false;
  }
  const std::string persisted = o.agent.state_dir + "/mapping.yaml";
  auto r = agent.restore();
  if (!r) {
    report(core::Unexpected<core::Diagnostics>{std::move(r).error()}, persisted);
    return false;
  }
  if (*r) {
    report(**r, persisted);
    return true;
  }
  // Nothing persisted, or a persisted mapping set aside: the config file.
  std::error_code ec;
  if (std::filesystem::exists(o.config, ec)) {
    auto text = core::read_file(o.config);
    if (!text) {
      log_error(text.error().what());
      return false;
    }
    auto a = agent.apply(*text, o.config);
    report(a, o.config);
    return a.ok();
  }
  log_info("no mapping yet: traffic passes unsteered until one is applied");
  return true;
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

namespace {

bool start_following(Agent& agent, FileFollow& f, const std::string& state_dir) {
  const std::string& path = f.follower->path();
  // The last applied mapping first, as the generation it was: what the file
  // brings is then an apply like any other, with a mapping before it for an
  // auto-rollback to return to.
  auto restored = agent.restore();
  if (!restored) {
    for (const auto& d : restored.error().items()) log_diagnostic(d, state_dir + "/mapping.yaml");
    return false;
  }
  const uint32_t running = *restored ? (*restored)->generation : 0;
  if (running) log_info(fmt::format("restored generation {} from the state directory", running));
  FileState s;
  s.path = path;
  s.time_unix_ms = now_unix_ms();
  auto text = core::read_file(path);
  if (!text) {
    s.result = "unreadable";
    s.error = text.error().what();
    log_warning(fmt::format("{}; {}; the file is applied when it appears", s.error,
                            running ? fmt::format("generation {} runs", running)
                                    : std::string("traffic passes unsteered until a mapping is applied")));
    f.status.set(std::move(s));
    return true;
  }
  s.hash = content_hash(*text);
  f.follower->seen(s.hash);
  if (running && agent.running_mapping().text == *text) {  // a restart: nothing to apply
    s.result = "applied";
    s.generation = running;
    f.status.set(std::move(s));
    return true;
  }
  if (auto gone = core::read_file(f.rolled_back_path); gone && *gone == s.hash + "\n") {
    s.result = "rolled back";
    s.error =
        "an auto-rollback rolled this content back before clovisd restarted; the file is applied again when "
        "it changes, or on SIGHUP";
    log_warning(fmt::format("{}: {}", path, s.error));
    f.status.set(std::move(s));
    return true;
  }
  // No apply hook yet (the loop sets it): the outcome is logged here.
  auto r = apply_change(agent, f, {std::move(*text), s.hash});
  const auto& diags = r ? r->report.diagnostics : r.error().diagnostics;
  for (const auto& d : diags.items()) log_diagnostic(d, path);
  if (r) {
    for (const auto& n : r->report.notes) log_warning(n);
    log_info(fmt::format("applied {} as generation {}", path, r->report.generation));
  } else {
    log_error(fmt::format("{}: {}; {}", path,
                          r.error().kind == ApplyFailure::kRejected ? "rejected" : r.error().message(),
                          running ? fmt::format("generation {} keeps running", running)
                                  : std::string("traffic passes unsteered until a mapping is applied")));
  }
  return true;
}

}  // namespace

bool start_mapping(const DaemonOptions& o, Agent& agent, std::unique_ptr<FileFollow>* follow) {
  if (!o.follow_config || o.once) return start_without_following(o, agent);
  // Watching before the first read: a change while clovisd starts is seen.
  auto f = ConfigFollower::open(o.config);
  if (!f) {
    log_error(f.error().what());
    return false;
  }
  *follow = std::make_unique<FileFollow>();
  (*follow)->follower = std::move(*f);
  (*follow)->rolled_back_path = o.agent.state_dir + "/config-rolled-back";
  log_info(fmt::format("following {}: each change is applied", o.config));
  return start_following(agent, **follow, o.agent.state_dir);
}

int follow_timeout_ms(const FileFollow* follow, int timeout_ms) {
  if (!follow) return timeout_ms;
  const int t = follow->follower->timeout_ms(ConfigFollower::Clock::now());
  return t >= 0 ? std::min(t, timeout_ms) : timeout_ms;
}

void follow_poll(Agent& agent, FileFollow& f, bool readable) {
  if (readable) f.follower->drain(ConfigFollower::Clock::now());
  follow_step(agent, f, false);
  // The file's mapping rolled back by its auto-rollback: so Status says,
  // and so a restart remembers, until the file's content changes.
  FileState s = f.status.get();
  if (s.result != "applied" || !s.generation || agent.auto_rolled_back() != s.generation) return;
  s.result = "rolled back";
  s.error = fmt::format(
      "generation {} left no usable link and was rolled back (auto-rollback); the file is "
      "applied again when it changes, or on SIGHUP",
      s.generation);
  s.time_unix_ms = now_unix_ms();
  if (auto st = write_file_atomic(f.rolled_back_path, s.hash + "\n"); !st)
    log_warning("a restart will apply the rolled-back file again: " + st.error().what());
  f.status.set(std::move(s));
}

}  // namespace clovis::agent
