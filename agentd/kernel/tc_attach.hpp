// Attaching the clovis programs to interfaces so that they stay attached when
// clovisd exits: TCX links pinned in bpffs (kernel >= 6.6), or legacy clsact
// cls_bpf filters (which persist by themselves) on older kernels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace clovis::agent::kernel {

enum class Hook { kIngress, kEgress };

// Legacy cls_bpf filter identity, so clovis finds and replaces its own (and
// --uninstall finds them without the state directory's records).
inline constexpr uint32_t kLegacyHandle = 0xc10;
inline constexpr uint32_t kLegacyPriority = 0xc1;

struct Attachment {
  std::string ifname;
  int ifindex = 0;
  Hook hook = Hook::kIngress;
  std::string prog;  // lan_in, lan_out, wan_in
};

class TcAttacher {
 public:
  // Links are pinned under pin_dir/links; legacy tc filters (nothing to pin)
  // are remembered in state_dir/tc (bpffs holds no regular files).
  TcAttacher(const std::string& pin_dir, const std::string& state_dir)
      : links_dir_(pin_dir + "/links"), legacy_dir_(state_dir + "/tc") {}

  // Attaches prog_fd, or atomically replaces the program of an existing
  // clovis attachment at the same point (a restarted agent re-adopts).
  core::Status attach(const Attachment& a, int prog_fd);
  // Detaches every clovis attachment not in `keep` (interfaces dropped from
  // the configuration, or recreated with a new ifindex).
  core::Status prune(const std::vector<Attachment>& keep);
  // Detaches everything clovis attached.
  core::Status detach_all() { return prune({}); }

  // What is attached now (from the pins), for status output.
  std::vector<std::string> pinned() const;

 private:
  std::string pin_name(const Attachment& a) const;
  std::string legacy_name(const Attachment& a) const;
  core::Status attach_legacy(const Attachment& a, int prog_fd);
  void prune_dir(const std::string& dir, const std::vector<Attachment>& keep, bool legacy);
  std::string links_dir_, legacy_dir_;
};

}  // namespace clovis::agent::kernel
