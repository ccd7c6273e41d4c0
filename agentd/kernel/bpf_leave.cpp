// The links policies' live flows must leave (clv_leave) and their summary
// bits in clv_links: what the program tests per packet is one bit of the
// clv_link it loads anyway (CLV_LINK_LEAVE), and only the flows of a link
// with that bit look at their policy's entry.
#include <algorithm>
#include <cerrno>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_batch.hpp"
#include "bpf_dataplane.hpp"

// Generated code: not held to the project's warning set.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-align"
#include "clovis_bpf.skel.h"
#pragma GCC diagnostic pop

namespace clovis::agent::kernel {

clv_link BpfDataplane::with_leave_flags(clv_link l, uint32_t s) const {
  l.flags &= static_cast<uint8_t>(~(CLV_LINK_LEAVE | CLV_LINK_LEAVE_FORCE));
  if (leave_links_ >> s & 1) l.flags |= CLV_LINK_LEAVE;
  if (leave_force_ >> s & 1) l.flags |= CLV_LINK_LEAVE_FORCE;
  return l;
}

core::Status BpfDataplane::set_leave(const std::vector<clv_leave>& leave) {
  if (leave.size() > CLV_MAX_POLICIES)
    return core::fail(core::ErrorCode::kLimit, "more leave entries than policies (CLV_MAX_POLICIES)");
  // Entries first, then the summary: a bit set before its entry, or an
  // entry left after its bit is cleared, moves nothing.
  std::vector<uint32_t> keys;
  std::vector<clv_leave> vals;
  uint64_t links = 0, force = 0;
  for (uint32_t i = 0; i < std::max(leave.size(), leave_entries_); ++i) {
    keys.push_back(i);
    vals.push_back(i < leave.size() ? leave[i] : clv_leave{});
    uint64_t any = 0;
    for (uint64_t m : vals.back().links) any |= m;
    links |= any;
    force |= any & vals.back().force;
  }
  if (!keys.empty())
    if (auto st = update_batch(skel_->maps.clv_leave, keys, vals); !st) return st;
  leave_entries_ = leave.size();
  const uint64_t changed = (links ^ leave_links_) | (force ^ leave_force_);
  leave_links_ = links;
  leave_force_ = force;
  const int fd = bpf_map__fd(skel_->maps.clv_links);
  for (uint32_t s = 0; s < CLV_MAX_LINKS; ++s) {
    if (!(changed >> s & 1)) continue;
    clv_link l{};
    if (bpf_map_lookup_elem(fd, &s, &l) != 0) return sys_fail("read clv_links", errno);
    l = with_leave_flags(l, s);
    if (bpf_map_update_elem(fd, &s, &l, BPF_ANY) != 0) return sys_fail("write clv_links", errno);
  }
  return core::Ok{};
}

}  // namespace clovis::agent::kernel
