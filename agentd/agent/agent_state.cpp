#include "agent/agent_state.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/fd.hpp"
#include "core/pipeline.hpp"
#include "log/log.hpp"

namespace clovis::agent {

namespace fs = std::filesystem;
using nlohmann::json;

int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

namespace {

core::Status io_fail(const std::string& what, const std::string& path, int err) {
  return core::fail(core::ErrorCode::kIo, fmt::format("{}: {}", what, std::strerror(err)), path, err);
}

// fsync(2) of a directory: makes a rename in it durable.
core::Status sync_dir(const std::string& dir) {
  core::Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return io_fail("open directory", dir, errno);
  const bool ok = ::fsync(fd.get()) == 0;
  const int err = errno;
  return ok ? core::Status{core::Ok{}} : io_fail("sync directory", dir, err);
}

}  // namespace

// Durable as well as atomic: the data reaches the disk before the rename,
// and the rename before this returns, so after a power cut the file holds
// the old content or the new one, whole. A full disk is an error here
// (ENOSPC from write or fsync), never a truncated file.
core::Status write_file_atomic(const std::string& path, const std::string& body) {
  std::error_code ec;
  const fs::path dir = fs::path(path).parent_path();
  fs::create_directories(dir, ec);
  const std::string tmp = path + ".tmp";
  core::Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return io_fail("create", tmp, errno);
  size_t done = 0;
  while (done < body.size()) {
    ssize_t n = ::write(fd.get(), body.data() + done, body.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      fd.reset();
      ::unlink(tmp.c_str());
      return io_fail("write", tmp, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) {
    const int err = errno;
    fd.reset();
    ::unlink(tmp.c_str());
    return io_fail("sync", tmp, err);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return io_fail("rename to " + path, tmp, err);
  }
  return sync_dir(dir.empty() ? "." : dir.string());
}

std::optional<nlohmann::json> read_state_json(const std::string& path,
                                              const std::function<bool(const nlohmann::json&)>& valid) {
  auto text = core::read_file(path);
  if (!text) return std::nullopt;
  auto j = json::parse(*text, nullptr, false);
  bool ok = !j.is_discarded();
  try {
    ok = ok && valid(j);
  } catch (const std::exception&) {  // nlohmann's type and range errors, and the caller's
    ok = false;
  }
  if (ok) return j;
  set_aside(path, j.is_discarded() ? "not JSON" : "not in the expected shape");
  return std::nullopt;
}

void set_aside(const std::string& path, const std::string& why) {
  const std::string to = fmt::format("{}.corrupt-{}", path, now_unix_ms());
  std::error_code ec;
  fs::rename(path, to, ec);
  log_warning(fmt::format("{}: {}; set aside as {}{}, carrying on without it", path, why, to,
                          ec ? " (the rename failed: " + ec.message() + ")" : ""));
}

std::string History::text_path(uint32_t generation) const {
  return dir_ + "/history/" + std::to_string(generation) + ".yaml";
}

void History::load() {
  entries_.clear();
  std::vector<HistoryEntry> read;
  auto j = read_state_json(dir_ + "/history.json", [&](const json& a) {
    if (!a.is_array()) return false;
    for (const auto& e : a)
      read.push_back({e.at("generation").get<uint32_t>(), e.at("applied_unix_ms").get<int64_t>(),
                      e.at("source").get<std::string>()});
    return true;
  });
  if (!j) return;
  std::error_code ec;
  for (auto& h : read)
    if (h.generation && fs::exists(text_path(h.generation), ec)) entries_.push_back(std::move(h));
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

core::Result<std::string> History::text(uint32_t generation) const {
  return core::read_file(text_path(generation));
}

std::optional<PendingConfirm> load_pending_confirm(const std::string& state_dir) {
  PendingConfirm p;
  auto j = read_state_json(state_dir + "/confirm.json", [&](const json& o) {
    p.deadline_unix_ms = o.at("deadline_unix_ms").get<int64_t>();
    p.generation = o.at("generation").get<uint32_t>();
    p.fallback_generation = o.at("fallback_generation").get<uint32_t>();
    p.fallback_source = o.at("fallback_source").get<std::string>();
    p.fallback_text = o.at("fallback_text").get<std::string>();
    p.auto_rollback_ms = o.value("auto_rollback_ms", uint32_t{0});  // absent before auto-rollback existed
    return true;
  });
  if (!j) return std::nullopt;
  return p;
}

std::vector<RouteLink> load_route_ledger(const std::string& state_dir) {
  std::vector<RouteLink> out;
  auto addr = [](const json& v) -> std::optional<core::IpAddr> {
    if (v.is_null()) return std::nullopt;
    auto a = core::IpAddr::parse(v.get<std::string>());
    if (!a) throw std::invalid_argument("address");
    return a;
  };
  auto j = read_state_json(state_dir + "/routes.json", [&](const json& a) {
    for (const auto& r : a.at("routes")) {
      RouteLink rl;
      rl.slot = r.at("slot").get<int>();
      rl.interface = r.at("interface").get<std::string>();
      rl.ifindex = r.at("ifindex").get<int>();
      rl.mark = r.at("mark").get<uint32_t>();
      rl.table = r.at("table").get<uint32_t>();
      rl.pref = r.at("pref").get<uint32_t>();
      rl.gw4 = addr(r.at("gw4"));
      rl.gw6 = addr(r.at("gw6"));
      rl.point_to_point = r.at("point_to_point").get<bool>();
      out.push_back(std::move(rl));
    }
    return true;
  });
  if (!j) out.clear();
  return out;
}

core::Status save_route_ledger(const std::string& state_dir, const std::vector<RouteLink>& routes) {
  json a = json::array();
  for (const auto& r : routes)
    a.push_back({{"slot", r.slot},
                 {"interface", r.interface},
                 {"ifindex", r.ifindex},
                 {"mark", r.mark},
                 {"table", r.table},
                 {"pref", r.pref},
                 {"gw4", r.gw4 ? json(r.gw4->str()) : json(nullptr)},
                 {"gw6", r.gw6 ? json(r.gw6->str()) : json(nullptr)},
                 {"point_to_point", r.point_to_point}});
  return write_file_atomic(state_dir + "/routes.json", json{{"routes", a}}.dump(1) + "\n");
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
            {"fallback_text", p->fallback_text},
            {"auto_rollback_ms", p->auto_rollback_ms}};
  return write_file_atomic(path, j.dump(2) + "\n");
}

}  // namespace clovis::agent
