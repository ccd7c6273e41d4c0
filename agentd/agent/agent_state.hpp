// What the agent keeps in its state directory besides the running mapping:
// the history of applied mappings (for rollback) and a pending
// commit-confirm (so that a restart does not forget to revert).
//
//   STATE_DIR/history.json        [{generation, applied_unix_ms, source}], oldest first
//   STATE_DIR/history/GEN.yaml    each entry's text, as it was applied
//   STATE_DIR/confirm.json        the pending confirmation, while there is one
//   STATE_DIR/routes.json         the policy routing clovisd made or is about to make
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/result.hpp"
#include "ports/host_network.hpp"

namespace clovis::agent {

struct HistoryEntry {
  uint32_t generation = 0;
  int64_t applied_unix_ms = 0;
  std::string source;
};

class History {
 public:
  static constexpr size_t kMaxEntries = 10;

  explicit History(std::string state_dir) : dir_(std::move(state_dir)) {}

  // Reads the index; entries whose text file is missing are dropped.
  void load();
  // Adds an entry (dropping the oldest beyond kMaxEntries) and writes it out.
  core::Status record(const HistoryEntry& e, const std::string& text);

  const std::vector<HistoryEntry>& entries() const { return entries_; }
  const HistoryEntry* find(uint32_t generation) const;
  core::Result<std::string> text(uint32_t generation) const;

 private:
  std::string text_path(uint32_t generation) const;
  core::Status save_index() const;

  std::string dir_;
  std::vector<HistoryEntry> entries_;
};

// An apply made with a confirmation timeout: unless confirmed by the
// deadline, `fallback_text` (what ran before) is applied again.
struct PendingConfirm {
  int64_t deadline_unix_ms = 0;
  uint32_t generation = 0;  // the apply that waits for confirmation
  uint32_t fallback_generation = 0;
  std::string fallback_source;
  std::string fallback_text;
  // > 0: not an operator's confirmation but the mapping's auto-rollback
  // (no deadline): a usable link confirms it, none for this long reverts.
  uint32_t auto_rollback_ms = 0;
};

std::optional<PendingConfirm> load_pending_confirm(const std::string& state_dir);
// nullopt removes the file.
core::Status save_pending_confirm(const std::string& state_dir, const std::optional<PendingConfirm>& p);

// The policy routing clovisd made, or is about to make (written first): after
// a crash in an apply, the restarted agent removes what the mapping it runs
// does not want, whichever mapping made it. An uninstall removes it all.
std::vector<RouteLink> load_route_ledger(const std::string& state_dir);
core::Status save_route_ledger(const std::string& state_dir, const std::vector<RouteLink>& routes);

// Writes `body` to `path` through a temporary file, fsync and a rename (and
// fsync of the directory), so a crash or power cut leaves the old content or
// the new one. Errors carry the errno's text ("No space left on device").
core::Status write_file_atomic(const std::string& path, const std::string& body);

// Reads a state file: nullopt when it does not exist, or when it is not JSON
// or `valid` refuses it (or throws on a wrong type): then the file is set
// aside (renamed PATH.corrupt-UNIXMS, with a warning) so that clovisd carries
// on without it rather than stopping at every start.
std::optional<nlohmann::json> read_state_json(const std::string& path,
                                              const std::function<bool(const nlohmann::json&)>& valid);
void set_aside(const std::string& path, const std::string& why);

int64_t now_unix_ms();

}  // namespace clovis::agent
