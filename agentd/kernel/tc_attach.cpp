#include "tc_attach.hpp"

#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "core/fd.hpp"

namespace clovis::agent::kernel {

namespace {

// Not in the bookworm UAPI headers; stable kernel ABI values.
constexpr int kBpfTcxIngress = 46;
constexpr int kBpfTcxEgress = 47;

core::Unexpected<core::Error> sys_fail(const std::string& what, int err) {
  return core::fail(core::ErrorCode::kIo, std::strerror(err), what, err);
}

const char* hook_name(Hook h) {
  return h == Hook::kIngress ? "ingress" : "egress";
}

}  // namespace

// <ifname>@<ifindex>-<prog>: a recreated interface gets a new ifindex, so its
// stale pin is recognisable. bpffs refuses '.' in names (eth0.100 is a
// valid interface name), hence the substitution.
std::string TcAttacher::pin_name(const Attachment& a) const {
  std::string ifname = a.ifname;
  std::replace(ifname.begin(), ifname.end(), '.', '%');
  return fmt::format("{}/{}@{}-{}", links_dir_, ifname, a.ifindex, a.prog);
}

std::string TcAttacher::legacy_name(const Attachment& a) const {
  return fmt::format("{}/{}@{}-{}", legacy_dir_, a.ifname, a.ifindex, a.prog);
}

core::Status TcAttacher::attach(const Attachment& a, int prog_fd) {
  std::error_code ec;
  std::filesystem::create_directories(links_dir_, ec);
  const std::string pin = pin_name(a);
  if (core::Fd fd(bpf_obj_get(pin.c_str())); fd) {
    int rc = bpf_link_update(fd.get(), prog_fd, nullptr);
    int err = errno;
    if (rc == 0) return core::Ok{};
    return sys_fail(fmt::format("replace the program on {} {}", a.ifname, hook_name(a.hook)), err);
  }
  if (std::filesystem::exists(legacy_name(a), ec)) return attach_legacy(a, prog_fd);
  core::Fd fd(bpf_link_create(prog_fd, a.ifindex,
                              static_cast<bpf_attach_type>(a.hook == Hook::kIngress ? kBpfTcxIngress : kBpfTcxEgress),
                              nullptr));
  if (!fd) {
    if (errno == EINVAL || errno == EOPNOTSUPP) return attach_legacy(a, prog_fd);  // kernel < 6.6
    return sys_fail(fmt::format("attach {} to {} {}", a.prog, a.ifname, hook_name(a.hook)), errno);
  }
  int rc = bpf_obj_pin(fd.get(), pin.c_str());
  int err = errno;
  fd.reset();  // the pin keeps the link (and the attachment) alive
  if (rc != 0) return sys_fail("pin " + pin, err);
  return core::Ok{};
}

core::Status TcAttacher::attach_legacy(const Attachment& a, int prog_fd) {
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a.ifindex,
              .attach_point = a.hook == Hook::kIngress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
  int rc = bpf_tc_hook_create(&hook);
  if (rc != 0 && rc != -EEXIST) return sys_fail(fmt::format("create clsact on {}", a.ifname), -rc);
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE, .handle = kLegacyHandle,
              .priority = kLegacyPriority);
  rc = bpf_tc_attach(&hook, &opts);
  if (rc != 0) return sys_fail(fmt::format("attach {} to {} {} (tc)", a.prog, a.ifname, hook_name(a.hook)), -rc);
  std::error_code ec;
  std::filesystem::create_directories(legacy_dir_, ec);
  std::ofstream(legacy_name(a)) << (a.hook == Hook::kIngress ? "ingress\n" : "egress\n");
  return core::Ok{};
}

core::Status TcAttacher::prune(const std::vector<Attachment>& keep) {
  prune_dir(links_dir_, keep, false);
  prune_dir(legacy_dir_, keep, true);
  return core::Ok{};
}

void TcAttacher::prune_dir(const std::string& dir, const std::vector<Attachment>& keep, bool legacy) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string path = e.path().string();
    bool kept = false;
    for (const auto& a : keep) kept = kept || path == (legacy ? legacy_name(a) : pin_name(a));
    if (kept) continue;
    if (legacy) {
      // name: ifname@ifindex-prog; remove our filter if the interface is still there.
      const std::string name = e.path().filename().string();
      int ifindex = std::atoi(name.c_str() + name.rfind('@') + 1);
      std::ifstream in(path);
      std::string where;
      in >> where;
      LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
                  .attach_point = where == "egress" ? BPF_TC_EGRESS : BPF_TC_INGRESS);
      LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kLegacyHandle, .priority = kLegacyPriority);
      bpf_tc_detach(&hook, &opts);  // gone already is fine
    } else if (core::Fd fd(bpf_obj_get(path.c_str())); fd) {
      bpf_link_detach(fd.get());
    }
    std::filesystem::remove(e.path(), ec);
  }
}

std::vector<std::string> TcAttacher::pinned() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(links_dir_, ec)) out.push_back(e.path().filename().string());
  for (const auto& e : std::filesystem::directory_iterator(legacy_dir_, ec))
    out.push_back(e.path().filename().string() + " (tc)");
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace clovis::agent::kernel
