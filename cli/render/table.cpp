#include "table.hpp"

#include <algorithm>

namespace clovis::cli::render {

void Table::print(std::ostream& os, const std::string& indent) const {
  std::vector<size_t> w(header_.size(), 0);
  auto widen = [&](const std::vector<std::string>& r) {
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
  };
  widen(header_);
  for (const auto& r : rows_) widen(r);
  auto line = [&](const std::vector<std::string>& r) {
    std::string s = indent;
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) {
      s += r[i];
      if (i + 1 < r.size()) s += std::string(w[i] - r[i].size() + 2, ' ');
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    os << s << "\n";
  };
  if (!header_.empty() && !header_[0].empty()) line(header_);
  for (const auto& r : rows_) line(r);
}

}  // namespace clovis::cli::render
