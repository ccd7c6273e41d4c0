// An optional string in 8 bytes, for the model's rarely set fields: a
// std::optional<std::string> is 40, and a Rule had four of them (160 of its
// 416 bytes) while a mapping may hold 100,000 rules that set none.
#pragma once

#include <memory>
#include <optional>
#include <string>

namespace clovis::core {

class OptString {
 public:
  OptString() = default;
  OptString(std::nullopt_t) {}                                                   // NOLINT: as std::optional
  OptString(std::string s) : p_(std::make_unique<std::string>(std::move(s))) {}  // NOLINT
  OptString(const char* s) : OptString(std::string(s)) {}                        // NOLINT
  OptString(const std::optional<std::string>& o) : p_(o ? std::make_unique<std::string>(*o) : nullptr) {}  // NOLINT
  OptString(const OptString& o) : p_(o.p_ ? std::make_unique<std::string>(*o.p_) : nullptr) {}
  OptString(OptString&&) noexcept = default;
  OptString& operator=(const OptString& o) {
    if (this != &o) p_ = o.p_ ? std::make_unique<std::string>(*o.p_) : nullptr;
    return *this;
  }
  OptString& operator=(OptString&&) noexcept = default;

  bool has_value() const { return p_ != nullptr; }
  explicit operator bool() const { return has_value(); }
  const std::string& operator*() const { return *p_; }
  const std::string* operator->() const { return p_.get(); }
  void reset() { p_.reset(); }
  operator std::optional<std::string>() const {  // NOLINT: where a std::optional is wanted
    return p_ ? std::optional<std::string>(*p_) : std::nullopt;
  }

  friend bool operator==(const OptString& a, const OptString& b) {
    return a.has_value() == b.has_value() && (!a.has_value() || *a == *b);
  }

 private:
  std::unique_ptr<std::string> p_;
};

}  // namespace clovis::core
