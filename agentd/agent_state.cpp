#include "agent_state.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "pipeline.hpp"

namespace clovis::agent {

namespace fs = std::filesystem;
using nlohmann::json;

int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

core::Status write_file_atomic(const std::string& path, const std::string& body) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  const std::string tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::trunc | std::ios::binary);
  out << body;
  out.close();
  if (!out) return core::fail(core::ErrorCode::kIo, "write failed", tmp);
  fs::rename(tmp, path, ec);
  if (ec) return core::fail(core::ErrorCode::kIo, ec.message(), path);
  return core::Ok{};
}

std::string History::text_path(uint32_t generation) const {
  return dir_ + "/history/" + std::to_string(generation) + ".yaml";
}

void History::load() {
  entries_.clear();
  auto text = core::read_file(dir_ + "/history.json");
  if (!text) return;
  auto j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_array()) return;
  std::error_code ec;
  for (const auto& e : j) {
    if (!e.is_object()) continue;
    HistoryEntry h{e.value("generation", 0u), e.value("applied_unix_ms", int64_t{0}), e.value("source", std::string())};
    if (h.generation && fs::exists(text_path(h.generation), ec)) entries_.push_back(std::move(h));
  }
  std::sort(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) { return a.generation < b.generation; });
}

core::Status History::save_index() const {
  json j = json::array();
  for (const auto& e : entries_)
    j.push_back({{"generation", e.generation}, {"applied_unix_ms", e.applied_unix_ms}, {"source", e.source}});
  return write_file_atomic(dir_ + "/history.json", j.dump(2) + "\n");
}

core::Status History::record(const HistoryEntry& e, const std::string& text) {
  // Generations only grow; a smaller one means the state directory was
  // reset under us: start the history again.
  if (!entries_.empty() && entries_.back().generation >= e.generation) entries_.clear();
  entries_.push_back(e);
  std::error_code ec;
  while (entries_.size() > kMaxEntries) {
    fs::remove(text_path(entries_.front().generation), ec);
    entries_.erase(entries_.begin());
  }
  if (auto st = write_file_atomic(text_path(e.generation), text); !st) {
    entries_.pop_back();
    return st;
  }
  return save_index();
}

const HistoryEntry* History::find(uint32_t generation) const {
  for (const auto& e : entries_)
    if (e.generation == generation) return &e;
  return nullptr;
}

core::Result<std::string> History::text(uint32_t generation) const { return core::read_file(text_path(generation)); }

std::optional<PendingConfirm> load_pending_confirm(const std::string& state_dir) {
  auto text = core::read_file(state_dir + "/confirm.json");
  if (!text) return std::nullopt;
  auto j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("fallback_text")) return std::nullopt;
  PendingConfirm p;
  p.deadline_unix_ms = j.value("deadline_unix_ms", int64_t{0});
  p.generation = j.value("generation", 0u);
  p.fallback_generation = j.value("fallback_generation", 0u);
  p.fallback_source = j.value("fallback_source", std::string());
  p.fallback_text = j.value("fallback_text", std::string());
  return p;
}

core::Status save_pending_confirm(const std::string& state_dir, const std::optional<PendingConfirm>& p) {
  const std::string path = state_dir + "/confirm.json";
  if (!p) {
    std::error_code ec;
    fs::remove(path, ec);
    return core::Ok{};
  }
  json j = {{"deadline_unix_ms", p->deadline_unix_ms},
            {"generation", p->generation},
            {"fallback_generation", p->fallback_generation},
            {"fallback_source", p->fallback_source},
            {"fallback_text", p->fallback_text}};
  return write_file_atomic(path, j.dump(2) + "\n");
}

}  // namespace clovis::agent
