// The rtnetlink wire format shared by netlink.cpp (requests and their
// replies) and netlink_events.cpp (notifications): building a request,
// taking received messages and their attributes apart. Private to this
// folder: nothing outside agentd/netlink/ includes it.
#pragma once

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "netlink_events.hpp"

namespace clovis::agent::kernel {

// Helpers live in their own namespace so they cannot collide with a
// same-named function elsewhere in clovis::agent::kernel.
namespace nlcodec {

// Big enough for any dump datagram the kernel sends to a default socket;
// receive() grows it anyway if a bigger one arrives.
constexpr size_t kRxBufferSize = 32 * 1024;

constexpr size_t align4(size_t n) {
  return (n + 3) & ~size_t{3};
}
constexpr size_t kHdrLen = align4(sizeof(nlmsghdr));
constexpr size_t kAttrHdrLen = align4(sizeof(rtattr));

// Calls f(type, payload) for each well-formed attribute in `area`; stops at
// the first malformed one rather than read past it.
template <typename F>
void for_each_attr(std::span<const std::byte> area, F&& f) {
  while (area.size() >= kAttrHdrLen) {
    rtattr a{};
    std::memcpy(&a, area.data(), sizeof a);
    if (a.rta_len < kAttrHdrLen || a.rta_len > area.size()) return;
    f(static_cast<uint16_t>(a.rta_type & NLA_TYPE_MASK), area.subspan(kAttrHdrLen, a.rta_len - kAttrHdrLen));
    area = area.subspan(std::min(align4(a.rta_len), area.size()));
  }
}

// A NUL-terminated string attribute, tolerating a missing terminator.
inline std::string read_string(std::span<const std::byte> v) {
  const char* text = reinterpret_cast<const char*>(v.data());
  return std::string(text, strnlen(text, v.size()));
}

template <typename T>
T read_as(std::span<const std::byte> bytes) {
  T v{};
  std::memcpy(&v, bytes.data(), std::min(sizeof v, bytes.size()));
  return v;
}

}  // namespace nlcodec

// A received message, copied out of the receive buffer header-wise so no
// code reads a struct through a misaligned or aliased pointer.
struct NlMessage {
  nlmsghdr hdr{};
  std::span<const std::byte> payload;  // everything after the header

  template <typename T>
  std::optional<T> fixed() const {
    if (payload.size() < sizeof(T)) return std::nullopt;
    return nlcodec::read_as<T>(payload);
  }
  // The attributes that follow the fixed-size family header T.
  template <typename T>
  std::span<const std::byte> attrs() const {
    return payload.size() < nlcodec::align4(sizeof(T)) ? std::span<const std::byte>{}
                                                       : payload.subspan(nlcodec::align4(sizeof(T)));
  }
};

// A request under construction: a header plus a body of 4-byte aligned
// pieces, sent with sendmsg() as two iovecs.
class NlRequest {
 public:
  NlRequest(uint16_t type, uint16_t flags) {
    hdr_.nlmsg_type = type;
    // Every request asks for an ACK, so success is confirmed, not assumed.
    hdr_.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
  }

  void append(const void* data, size_t len) {
    const size_t at = body_.size();
    body_.resize(at + nlcodec::align4(len));
    if (len > 0) std::memcpy(body_.data() + at, data, len);
  }
  template <typename T>
  void body(const T& fixed) {
    append(&fixed, sizeof fixed);
  }

  void attr(uint16_t type, const void* data, size_t len) {
    rtattr a{};
    a.rta_type = type;
    a.rta_len = static_cast<uint16_t>(nlcodec::kAttrHdrLen + len);
    append(&a, sizeof a);
    append(data, len);
  }
  void attr_u32(uint16_t type, uint32_t v) { attr(type, &v, sizeof v); }
  void attr_u8(uint16_t type, uint8_t v) { attr(type, &v, sizeof v); }

  nlmsghdr& hdr() { return hdr_; }
  std::vector<std::byte>& body_bytes() { return body_; }

 private:
  nlmsghdr hdr_{};
  std::vector<std::byte> body_;
};

namespace nlcodec {

// Takes the first message off `rest` (which holds at least a header); false
// when it is malformed, and then nothing after it can be trusted either.
inline bool take_message(std::span<const std::byte>* rest, NlMessage* m) {
  std::memcpy(&m->hdr, rest->data(), sizeof m->hdr);
  if (m->hdr.nlmsg_len < kHdrLen || m->hdr.nlmsg_len > rest->size()) return false;
  m->payload = rest->subspan(kHdrLen, m->hdr.nlmsg_len - kHdrLen);
  *rest = rest->subspan(std::min(align4(m->hdr.nlmsg_len), rest->size()));
  return true;
}

// The link a RTM_NEWLINK/RTM_DELLINK message describes: a link query's
// reply and a link notification carry the same message.
IfInfo parse_link(const NlMessage& m);

}  // namespace nlcodec

}  // namespace clovis::agent::kernel
