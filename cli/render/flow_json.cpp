#include "flow_json.hpp"

#include <array>
#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

#include "flows.hpp"

namespace clovis::cli::render {

namespace {

void append_uint(std::string* out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, static_cast<size_t>(r.ptr - buf));
}

// Members of an object at `indent`, in nlohmann's order (its objects are
// std::maps: keys sorted), "key": value, separated by ",\n".
class Members {
 public:
  Members(std::string* out, int indent) : out_(out), indent_(indent) {}
  std::string& key(std::string_view k) {
    if (!first_) out_->append(",\n");
    first_ = false;
    out_->append(static_cast<size_t>(indent_), ' ');
    out_->push_back('"');
    out_->append(k);
    out_->append("\": ");
    return *out_;
  }
  void str(std::string_view k, std::string_view v) { append_json_string(&key(k), v); }
  void str_or_null(std::string_view k, std::string_view v) {
    if (v.empty()) key(k).append("null");
    else str(k, v);
  }
  void num(std::string_view k, uint64_t v) { append_uint(&key(k), v); }
  void dbl(std::string_view k, double v) { append_json_double(&key(k), v); }

 private:
  std::string* out_;
  int indent_;
  bool first_ = true;
};

}  // namespace

void append_json_string(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t plain = 0;  // start of the run of characters that need no escape
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default: {
        const char u[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        out->append(u, sizeof u);
      }
    }
  }
  out->append(s.data() + plain, s.size() - plain);
  out->push_back('"');
}

void append_json_double(std::string* out, double v) {
  if (!std::isfinite(v)) {
    out->append("null");
    return;
  }
  // nlohmann's own formatter (serializer::dump_float calls it): the same
  // digits, exponent style and ".0" for integral values.
  std::array<char, 64> buf;
  char* end = nlohmann::detail::to_chars(buf.data(), buf.data() + buf.size(), v);
  out->append(buf.data(), static_cast<size_t>(end - buf.data()));
}

void append_flow_json(std::string* out, const v1::Flow& f, int indent) {
  const int in = indent + 2;
  out->append("{\n");
  Members m(out, in);
  m.str("action", f.action());
  m.dbl("age_s", f.age_s());
  m.num("bytes_in", f.bytes_in());
  m.num("bytes_out", f.bytes_out());
  m.num("dport", f.dport());
  m.str("dst", f.dst());
  m.str("family", f.family());
  std::string& flags = m.key("flags");
  if (f.flags().empty()) {
    flags.append("[]");
  } else {
    flags.append("[\n");
    for (int i = 0; i < f.flags_size(); ++i) {
      if (i) flags.append(",\n");
      flags.append(static_cast<size_t>(in + 2), ' ');
      append_json_string(&flags, f.flags(i));
    }
    flags.push_back('\n');
    flags.append(static_cast<size_t>(in), ' ');
    flags.push_back(']');
  }
  m.num("generation", f.generation());
  m.dbl("idle_s", f.idle_s());
  if (f.has_l7()) {
    // Rare (a proxy's sessions): nlohmann prints it, re-indented to sit here.
    const std::string l7 = l7_json(f.l7()).dump(2);
    std::string& o = m.key("l7");
    for (char c : l7) {
      o.push_back(c);
      if (c == '\n') o.append(static_cast<size_t>(in), ' ');
    }
  }
  m.str_or_null("link", f.link());
  if (!f.nat().empty()) m.str("nat", f.nat());
  m.num("packets_in", f.packets_in());
  m.num("packets_out", f.packets_out());
  m.str("proto", f.proto());
  m.str_or_null("rule", f.rule());
  m.num("sport", f.sport());
  m.str("src", f.src());
  out->push_back('\n');
  out->append(static_cast<size_t>(indent), ' ');
  out->push_back('}');
}

void FlowsJsonWriter::flow(const v1::Flow& f) {
  buf_.append(first_ ? "{\n  \"flows\": [\n    " : ",\n    ");
  first_ = false;
  append_flow_json(&buf_, f, 4);
  if (buf_.size() >= kBlock) flush();
}

void FlowsJsonWriter::finish(uint64_t total) {
  buf_.append(first_ ? "{\n  \"flows\": [],\n" : "\n  ],\n");
  buf_.append("  \"total\": ");
  append_uint(&buf_, total);
  buf_.append("\n}\n");
  flush();
}

void FlowsJsonWriter::flush() {
  os_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
  buf_.clear();
}

}  // namespace clovis::cli::render
