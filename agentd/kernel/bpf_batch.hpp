// Batched reads and writes of BPF hash maps, shared by the kernel
// Dataplane's files. Private to agentd/kernel.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "core/result.hpp"

namespace clovis::agent::kernel {

inline core::Unexpected<core::Error> sys_fail(const std::string& what, int err) {
  return core::fail(core::ErrorCode::kIo, std::strerror(err), what, err);
}

template <typename K, typename V>
inline core::Status update_batch(bpf_map* m, const std::vector<K>& keys, const std::vector<V>& vals) {
  if (keys.empty()) return core::Ok{};
  uint32_t n = static_cast<uint32_t>(keys.size());
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  if (bpf_map_update_batch(bpf_map__fd(m), keys.data(), vals.data(), &n, &opts) != 0 || n != keys.size())
    return sys_fail(fmt::format("write {} entries into {}", keys.size(), bpf_map__name(m)), errno);
  return core::Ok{};
}

template <typename K>
inline core::Status delete_batch(bpf_map* m, const std::vector<K>& keys) {
  if (keys.empty()) return core::Ok{};
  uint32_t n = static_cast<uint32_t>(keys.size());
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  if (bpf_map_delete_batch(bpf_map__fd(m), keys.data(), &n, &opts) != 0) {
    // Some keys may be gone already; fall back to one by one, ignoring ENOENT.
    for (const auto& k : keys)
      if (bpf_map_delete_elem(bpf_map__fd(m), &k) != 0 && errno != ENOENT)
        return sys_fail(fmt::format("delete from {}", bpf_map__name(m)), errno);
  }
  return core::Ok{};
}

// Reads a hash map in batches of up to `chunk` entries into `keys`/`vals`
// (sized `chunk`), calling visit(n) after each; visit returns false to stop.
// The last read returns ENOENT together with the final entries; those count
// too. The kernel walks every bucket of the table, empty or not.
template <typename K, typename V, typename Visit>
inline core::Status for_each_batch(bpf_map* m, K* keys, V* vals, uint32_t chunk, Visit&& visit) {
  const int fd = bpf_map__fd(m);
  alignas(8) uint8_t in[64], out[64];
  bool first = true;
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  for (;;) {
    uint32_t n = chunk;
    int rc = bpf_map_lookup_batch(fd, first ? nullptr : in, out, keys, vals, &n, &opts);
    int err = rc ? errno : 0;
    if (rc && err != ENOENT) return sys_fail(fmt::format("read {}", bpf_map__name(m)), err);
    if (n && !visit(n)) return core::Ok{};
    if (err == ENOENT) return core::Ok{};
    std::memcpy(in, out, sizeof in);
    first = false;
  }
}

// A whole hash map's keys, and its values when `vals` is given.
template <typename K, typename V>
inline core::Status read_all(bpf_map* m, std::vector<K>* keys, std::vector<V>* vals = nullptr) {
  constexpr uint32_t kChunk = 8192;
  std::vector<K> kb(kChunk);
  std::vector<V> vb(kChunk);
  return for_each_batch(m, kb.data(), vb.data(), kChunk, [&](uint32_t n) {
    keys->insert(keys->end(), kb.begin(), kb.begin() + n);
    if (vals) vals->insert(vals->end(), vb.begin(), vb.begin() + n);
    return true;
  });
}

// How many entries a hash map holds, counted a batch at a time.
template <typename K, typename V>
inline core::Result<uint64_t> count_entries(bpf_map* m) {
  constexpr uint32_t kChunk = 1024;
  std::vector<K> kb(kChunk);
  std::vector<V> vb(kChunk);
  uint64_t total = 0;
  auto st = for_each_batch(m, kb.data(), vb.data(), kChunk, [&](uint32_t n) {
    total += n;
    return true;
  });
  if (!st) return core::error_of(st);
  return total;
}

}  // namespace clovis::agent::kernel
