#include "tc_leftovers.hpp"

#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "core/fd.hpp"
#include "tc_attach.hpp"

namespace clovis::agent::kernel {

namespace {

// Priority and handle could be anyone's choice; the program's name prefix
// makes the filter clovis's.
bool clovis_program(uint32_t prog_id) {
  core::Fd fd(bpf_prog_get_fd_by_id(prog_id));
  if (!fd) return false;
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  return bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0 && std::strncmp(info.name, "clv_", 4) == 0;
}

}  // namespace

size_t detach_legacy_leftovers(std::vector<std::string>* errors) {
  struct if_nameindex* ifs = if_nameindex();
  if (!ifs) {
    errors->push_back(fmt::format("list interfaces for legacy tc filters: {}", std::strerror(errno)));
    return 0;
  }
  size_t detached = 0;
  // Most interfaces have no clsact: libbpf would print the kernel's
  // "Parent Qdisc doesn't exists" for each.
  const libbpf_print_fn_t print = libbpf_set_print(nullptr);
  for (const struct if_nameindex* i = ifs; i->if_index != 0; ++i) {
    for (auto point : {BPF_TC_INGRESS, BPF_TC_EGRESS}) {
      LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(i->if_index), .attach_point = point);
      LIBBPF_OPTS(bpf_tc_opts, query, .handle = kLegacyHandle, .priority = kLegacyPriority);
      // No clsact, or no such filter: nothing of clovis's here.
      if (bpf_tc_query(&hook, &query) != 0 || !clovis_program(query.prog_id)) continue;
      LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kLegacyHandle, .priority = kLegacyPriority);
      if (int rc = bpf_tc_detach(&hook, &opts); rc != 0 && rc != -ENOENT)
        errors->push_back(fmt::format("detach the tc filter of {} {}: {}", i->if_name,
                                      point == BPF_TC_INGRESS ? "ingress" : "egress", std::strerror(-rc)));
      else ++detached;
    }
  }
  libbpf_set_print(print);
  if_freenameindex(ifs);
  return detached;
}

}  // namespace clovis::agent::kernel
