// The subset parser (core/yaml/yaml_subset.cpp) against yaml-cpp, differentially:
// whenever it reads a text, yaml-cpp must read it too and build the same tree
// — every node's kind, value and line:col — and YamlDoc::parse must give what
// yaml-cpp alone gives, tree or error. Inputs: hand-written cases on both
// sides of the subset's border, the examples, the loader tests' corpus,
// random mappings written in many styles, and mutations of those.
// CLOVIS_SEED repeats a run; CLOVIS_YAML_DOCS and CLOVIS_YAML_MUTANTS scale it
// (300 and 6000 by default; 3000 and 200000 for a long soak).
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "core/loader.hpp"
#include "core/yaml/yaml_doc.hpp"
#include "core/yaml/yaml_subset.hpp"
#include "helpers.hpp"
#include "loader_corpus.hpp"
#include "mapping_yaml.hpp"
#include "random_mapping.hpp"

using namespace clovis;
using core::YamlDoc;
using core::YamlKind;
using core::YamlNode;

namespace {

// The first difference between two trees, or "" when there is none.
std::string tree_diff(YamlNode a, YamlNode b, const std::string& path, int depth = 0) {
  if (a.kind() != b.kind())
    return fmt::format("{}: kind {} vs {}", path, static_cast<int>(a.kind()), static_cast<int>(b.kind()));
  if (a.loc().line != b.loc().line || a.loc().col != b.loc().col)
    return fmt::format("{}: at {}:{} vs {}:{}", path, a.loc().line, a.loc().col, b.loc().line, b.loc().col);
  if (a.scalar() != b.scalar()) return fmt::format("{}: '{}' vs '{}'", path, a.scalar(), b.scalar());
  if (a.size() != b.size()) return fmt::format("{}: {} vs {} children", path, a.size(), b.size());
  if (depth > 300) return path + ": deeper than any test document";
  for (size_t i = 0; i < a.size(); ++i) {
    std::string d;
    if (a.is_sequence()) {
      d = tree_diff(a.item(i), b.item(i), fmt::format("{}[{}]", path, i), depth + 1);
    } else {
      d = tree_diff(a.entry(i).key, b.entry(i).key, fmt::format("{}.key{}", path, i), depth + 1);
      if (d.empty()) d = tree_diff(a.entry(i).value, b.entry(i).value, fmt::format("{}.value{}", path, i), depth + 1);
    }
    if (!d.empty()) return d;
  }
  return "";
}

struct Verdict {
  bool subset = false;  // the subset parser read the text
  std::string problem;  // empty when the parsers agree
};

Verdict judge(const std::string& text) {
  Verdict v;
  auto ref = YamlDoc::parse_with_yaml_cpp(text);
  auto fast = core::parse_yaml_subset(text);
  v.subset = fast.has_value();
  if (fast) {
    if (!ref) return v.problem = "the subset parser read a text yaml-cpp rejects: " + ref.error().message, v;
    if (auto d = tree_diff(fast->root(), ref->root(), "root"); !d.empty()) return v.problem = d, v;
  }
  auto borrowed = YamlDoc::parse_borrowing(text);  // views into text: the same tree
  if (static_cast<bool>(borrowed) != static_cast<bool>(ref))
    return v.problem = "YamlDoc::parse_borrowing and yaml-cpp disagree on success", v;
  if (ref)
    if (auto d = tree_diff(borrowed->root(), ref->root(), "root"); !d.empty())
      return v.problem = "YamlDoc::parse_borrowing: " + d, v;
  auto both = YamlDoc::parse(text);
  if (static_cast<bool>(both) != static_cast<bool>(ref))
    return v.problem = "YamlDoc::parse and yaml-cpp disagree on success", v;
  if (!ref) {
    const auto &e1 = both.error(), &e2 = ref.error();
    if (e1.loc.line != e2.loc.line || e1.loc.col != e2.loc.col || e1.message != e2.message || e1.hint != e2.hint)
      v.problem = "different errors: " + e1.message + " / " + e2.message;
  } else if (auto d = tree_diff(both->root(), ref->root(), "root"); !d.empty()) {
    v.problem = "YamlDoc::parse: " + d;
  }
  return v;
}

// Checks every text; returns how many the subset parser read.
size_t check_all(const std::vector<std::string>& texts) {
  size_t read = 0;
  for (const auto& t : texts) {
    Verdict v = judge(t);
    read += v.subset;
    if (!v.problem.empty()) FAIL_CHECK(v.problem << "\n--- text ---\n" << t << "\n---");
  }
  return read;
}

std::string mutate(std::string s, std::mt19937_64& rng) {
  static const std::vector<std::string> bits = {
      " ",   "  ",       "\n",  "-",   "- ", ":",   ": ", "#",    " #",     ",",    ", ",   "[",
      "]",   "{",        "}",   "'",   "\"", "&a ", "*a", "!",    "!!str ", "|",    ">",    "%",
      "@",   "`",        "?",   "? ",  "~",  "\t",  "\r", "null", "Null",   "''",   "\"\"", "\\",
      "\\n", "\xc3\xa9", "---", "...", "0",  "a",   ".",  "/",    "::",     "x: y", "- z"};
  auto pos = [&](size_t n) { return n ? static_cast<size_t>(rng() % n) : 0; };
  auto lines = [&] {
    std::vector<std::string> out;
    for (size_t b = 0, e; b < s.size(); b = e + 1) {
      e = s.find('\n', b);
      if (e == std::string::npos) e = s.size();
      out.push_back(s.substr(b, e - b));
    }
    return out;
  };
  auto join = [](const std::vector<std::string>& ls) {
    std::string out;
    for (const auto& l : ls) out += l + "\n";
    return out;
  };
  const std::string& bit = bits[pos(bits.size())];
  switch (rng() % 7) {
    case 0:
      if (!s.empty()) s.replace(pos(s.size()), 1, bit);
      break;
    case 1: s.insert(pos(s.size() + 1), bit); break;
    case 2:
      if (!s.empty()) s.erase(pos(s.size()), 1 + pos(3));
      break;
    case 3: {
      auto ls = lines();
      if (!ls.empty()) {
        size_t i = pos(ls.size());
        ls.insert(ls.begin() + static_cast<long>(i), ls[i]);
      }
      s = join(ls);
      break;
    }
    case 4: {
      auto ls = lines();
      if (!ls.empty()) ls.erase(ls.begin() + static_cast<long>(pos(ls.size())));
      s = join(ls);
      break;
    }
    case 5: {
      auto ls = lines();
      if (!ls.empty()) {
        auto& l = ls[pos(ls.size())];
        if (rng() % 2) l.insert(0, 1 + pos(2), ' ');
        else if (!l.empty() && l[0] == ' ') l.erase(0, 1 + (l.size() > 1 && l[1] == ' ' ? pos(2) : 0));
      }
      s = join(ls);
      break;
    }
    default: {
      auto ls = lines();
      if (ls.size() > 1) {
        size_t i = pos(ls.size() - 1);
        std::swap(ls[i], ls[i + 1]);
      }
      s = join(ls);
      break;
    }
  }
  return s;
}

std::vector<std::string> rendered_mappings(uint64_t seed, int count, int max_rules) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    const uint64_t s = seed + static_cast<uint64_t>(i);
    test::RandomMapping gen(s);
    auto m = gen.mapping(1 + static_cast<int>(s % static_cast<uint64_t>(max_rules)), i % 2 == 1);
    out.push_back(test::render_mapping_yaml(m, test::random_yaml_style(s * 31), s));
  }
  return out;
}

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

}  // namespace

TEST_CASE("yaml subset: what it reads, it reads as yaml-cpp does") {
  const std::vector<std::string> inside = {
      "a: 1\n",
      "a: 1",
      "a:   1   \n",
      "a: 1 # c\n",
      "# c\n\n  # c\na: 1\n# c",
      "a:\n  b: c\n  d: e\nf: g\n",
      "a: # c\n  b: c\n",
      "a:\n  - x\n  - y\nb: z\n",
      "a:\n- x\n- y\nb: z\n",
      "a:\n    - {x: 1}\n    - y\n",
      "a: [1, 2]\n",
      "a: [ 1 ,  2 ]\n",
      "a: []\nb: {}\n",
      "a: {b: c, d: [e, f], g: {h: i}}\n",
      "a: {b:   c}\n",
      "a: [[1], [2, [3]]]\n",
      "a: [{b: c}, {d: e}]\n",
      "a: 'x y'\n",
      "a: \"x: y # z\"\n",
      "a: ' '\n",
      "a: \"\"\n",
      "a: ''\n",
      "'a': 1\n\"b\": 2\n",
      "a: null\nb: Null\nc: NULL\n",
      "a: 'null'\nb: \"NULL\"\n",
      "null: 1\n",
      "a: [null, 'null']\n",
      "a: 2001:db8::1\nb: ::1\nc: fe80::1%eth0\n",
      "a: -1\nb: +1\nc: .5\n",
      "-a: 1\n",
      "a: 10.0.0.0/8\nb: 5060-5061\nc: 0x10/0xff\nd: 5%\ne: a*b\nf: x=y@z\n",
      "a: '*.example.com'\n",
      "a:\n  - name: r\n    priority: 1\n  - {name: s}\n  - t\n",
      "a:\n  -   b: 1\n      c: 2\n",
      "a:\n  - b:\n      c: 1\n    d: 2\n",
      "a:\n  - b:\n    - 1\n    - 2\n    c: 3\n",
      "a: \"it's\"\n",
      "a: 'say \"hi\"'\n",
      "a: 'x # y'\n",
      "a: b:c\n",
      "a: [b:c]\n",
      "a: {b: c:d}\n",
  };
  const std::vector<std::string> outside = {
      "",
      "\n",
      "# only a comment\n",
      "- a\n",
      "{a: 1}\n",
      "a\n",
      "a: &x 1\nb: *x\n",
      "a: !tag x\n",
      "a: !!str 1\n",
      "a: |\n  x\n",
      "a: >\n  x\n",
      "a: x\n  y\n",
      "a:\tb\n",
      "\ta: b\n",
      "a: b\t\n",
      "a: 'it''s'\n",
      "a: \"\\n\"\n",
      "a: 'x\n  y'\n",
      "---\na: 1\n",
      "a: 1\n---\nb: 2\n",
      "a: 1\n...\n",
      "%YAML 1.2\n---\na: 1\n",
      "a:\n",
      "a:\nb: 1\n",
      "a: ~\n",
      "a: [1,\n 2]\n",
      "a: [1, ]\n",
      "a: {b: 1, }\n",
      "a: b c\n",
      "a: caf\xc3\xa9\n",
      "a: 1\r\n",
      "? a\n: b\n",
      "a: b: c\n",
      "a: [b: c]\n",
      "a: - b\n",
      "a:\n  - - b\n",
      "a:\n  -\n    b: c\n",
      "a: {b}\n",
      "a: {b: }\n",
      "a: [1]#c\n",
      "a: \"x\"y\n",
      "a: b#c\n",
      "a : b\n",
      "a:b\n",
      "a: {b:c}\n",
      "a: {\"b\":c}\n",
      "a: 1\n b: 2\n",
      "a:\n    b: 1\n  c: 2\n",
      "a:\n  - x\n   - y\n",
      "a: 1\n- b\n",
      "a: ,b\n",
      "a: [a, b\n",
      "a: @x\n",
      "a: `x`\n",
      "a: %x\n",
      "a: *\n",
      "a: fe80::\n",
      "a: b:\n",
      "a:\n  b: 1\n  b\n",
      std::string("a: 1\0b", 6),
      std::string(300, 'k') + ": 1\n",
  };
  for (const auto& t : inside) {
    Verdict v = judge(t);
    CHECK_MESSAGE(v.problem.empty(), v.problem << "\n" << t);
    CHECK_MESSAGE(v.subset, "outside the subset after all:\n" << t);
  }
  for (const auto& t : outside) {
    Verdict v = judge(t);
    CHECK_MESSAGE(v.problem.empty(), v.problem << "\n" << t);
    CHECK_MESSAGE(!v.subset, "read by the subset parser:\n" << t);
  }
}

TEST_CASE("yaml subset: the examples and the loader tests' corpus") {
  std::vector<std::string> examples;
  for (const auto& e : std::filesystem::directory_iterator(test::source_path("examples")))
    if (e.path().extension() == ".yaml") examples.push_back(core::read_file(e.path().string()).value());
  REQUIRE(examples.size() >= 2);
  MESSAGE("subset parser read " << check_all(examples) << " of " << examples.size() << " examples");
  check_all(test::loader_documents());
  const size_t read = check_all(test::loader_fuzz_inputs());
  MESSAGE("subset parser read " << read << " of the loader's fuzz inputs");
}

TEST_CASE("yaml subset: random mappings in many styles, and mutations of them") {
  const uint64_t seed = test::seed_from_env();
  INFO("seed " << seed << " (CLOVIS_SEED=" << seed << " to repeat)");
  MESSAGE("yaml subset seed " << seed);
  const auto docs = rendered_mappings(seed, env_int("CLOVIS_YAML_DOCS", 300), 40);
  // The renderer writes only what the subset covers, so all of it goes the fast way.
  CHECK(check_all(docs) == docs.size());
  for (const auto& d : docs) {
    auto loaded = core::load_mapping(d);
    if (!loaded) FAIL_CHECK("rendered mapping does not load:\n" << d);
  }

  std::mt19937_64 rng(seed);
  const auto small = rendered_mappings(seed ^ 0x5eed, 60, 6);
  std::vector<std::string> mutants;
  const int n = env_int("CLOVIS_YAML_MUTANTS", 6000);
  for (int i = 0; i < n; ++i) {
    std::string m = small[static_cast<size_t>(i) % small.size()];
    for (int k = 0, times = 1 + static_cast<int>(rng() % 3); k < times; ++k) m = mutate(m, rng);
    mutants.push_back(std::move(m));
  }
  const size_t read = check_all(mutants);
  MESSAGE("subset parser read " << read << " of " << mutants.size() << " mutants");
  CHECK(read > mutants.size() / 10);  // the fast path meets odd inputs, not only the fallback
}

// A 16 MiB mapping must not be held twice while it is read (docs/BENCHMARKS.md,
// "Bounded apply"): parse_borrowing's scalars are views into the caller's
// text, parse's into a copy the document owns.
TEST_CASE("yaml doc: parse_borrowing keeps views into the text, parse a copy") {
  const std::string text = "version: 1\nrules:\n  - {name: r1, priority: 1, link: a}\n";
  const auto inside = [&](std::string_view s) {
    return s.data() >= text.data() && s.data() + s.size() <= text.data() + text.size();
  };
  auto borrowed = YamlDoc::parse_borrowing(text);
  auto owned = YamlDoc::parse(text);
  REQUIRE(borrowed);
  REQUIRE(owned);
  const auto name = [](const YamlDoc& d) { return d.root().entry(1).value.item(0).entry(0).value.scalar(); };
  CHECK(name(*borrowed) == "r1");
  CHECK(name(*owned) == "r1");
  CHECK(inside(name(*borrowed)));
  CHECK_FALSE(inside(name(*owned)));
  YamlDoc moved = std::move(*borrowed);  // a move keeps the views
  CHECK(name(moved) == "r1");
  CHECK(inside(name(moved)));
}
