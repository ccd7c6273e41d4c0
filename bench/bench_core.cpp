// clovis-bench-core: load/validate/compile time and classification throughput
// of the pure core, at several rule-set sizes and shape mixes. The naive
// reference classifier runs in the same process on the same tuples so the
// numbers can be read as ratios on a shared, noisy machine.
//
// Targets (reported, not asserted): >= 1M classifications/s on one core with
// 10k rules; compile of 10k rules < 200 ms.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "core/classifier.hpp"
#include "core/compiled.hpp"
#include "core/loader.hpp"
#include "core/reference.hpp"
#include "core/validate.hpp"
#include "mapping_gen.hpp"

namespace clovis::bench {

namespace {

using Clock = std::chrono::steady_clock;
using core::Classifier;

// Every result feeds this, and it is printed, so no measured call is dead code.
uint64_t g_sink = 0;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Options {
  bool json = false;
  bool quick = false;
  uint64_t seed = 0x636c7673;
  std::vector<size_t> sizes = {10, 1000, 10000, 100000};
  size_t tuples = size_t{1} << 20;
  int passes = 3;           // lookup passes over the tuple array (median kept)
  double ref_budget = 0.4;  // seconds of reference scan per row, at least kRefMin tuples
  int runs(size_t n) const { return quick ? 3 : n >= 100000 ? 5 : n >= 10000 ? 9 : 21; }
};

constexpr size_t kRefMin = 200;
constexpr double kLookupBudget = 3.0;  // seconds of lookup passes per row

struct Stats {
  double median = 0, min = 0;  // seconds
};

Stats summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front()};
}

struct BuildRow {
  Mix mix;
  size_t rules = 0, yaml_bytes = 0, shapes = 0, entries = 0;
  int warnings = 0, runs = 0;
  Stats load, validate, compile, index, total;
};

struct ClassifyRow {
  Mix mix;
  size_t rules = 0, shapes = 0;
  std::string set;
  size_t tuples = 0, ref_tuples = 0, ref_disagree = 0;
  int passes = 0;
  double lookup_ns = 0, decide_ns = 0, ref_ns = 0;
};

// The last run's mapping (for the reference scan) and compiled rules, kept
// alive for the Classifier, which holds a reference to them.
struct Built {
  core::Mapping mapping;
  core::CompiledRules compiled;
};

// load, validate and compile timed separately (their sum is what
// core::check_mapping does), `runs` times each.
Built build(const Generated& g, Mix mix, int runs, BuildRow* row) {
  std::vector<double> load, validate, compile, index, total;
  int warnings = 0;
  Built b;
  for (int r = 0; r < runs; ++r) {
    auto t0 = Clock::now();
    auto loaded = core::load_mapping(g.yaml);
    load.push_back(seconds_since(t0));
    if (!loaded) throw std::runtime_error("generated mapping does not load");
    t0 = Clock::now();
    auto diags = core::validate(*loaded);
    validate.push_back(seconds_since(t0));
    if (diags.has_errors()) throw std::runtime_error("generated mapping does not validate");
    t0 = Clock::now();
    auto out = core::compile(*loaded, {});
    compile.push_back(seconds_since(t0));
    if (out.diagnostics.has_errors()) throw std::runtime_error(out.diagnostics.items()[0].message);
    t0 = Clock::now();
    Classifier cl(out.rules);
    index.push_back(seconds_since(t0));
    g_sink += cl.compiled().entries.size();
    total.push_back(load.back() + validate.back() + compile.back());
    warnings = diags.warning_count() + out.diagnostics.warning_count();
    b.mapping = std::move(loaded.value());
    b.compiled = std::move(out.rules);
  }
  *row = {mix,
          g.rules.size(),
          g.yaml.size(),
          b.compiled.shapes.size(),
          b.compiled.entries.size(),
          warnings,
          runs,
          summarize(load),
          summarize(validate),
          summarize(compile),
          summarize(index),
          summarize(total)};
  return b;
}

// Median of up to `passes` passes; later passes are skipped once a pass
// takes long (large, cache-missing rule sets), to keep the full run short.
double time_lookup(const Classifier& cl, const std::vector<clv_tuple>& tuples, int passes, int* done) {
  std::vector<double> ns;
  auto start = Clock::now();
  for (int p = 0; p < passes && (p == 0 || seconds_since(start) < kLookupBudget); ++p) {
    uint64_t sum = 0;
    auto t0 = Clock::now();
    for (const auto& t : tuples) {
      auto v = cl.lookup(t);
      sum += v ? v->rule_id + 1 : 0;
    }
    ns.push_back(seconds_since(t0) * 1e9 / static_cast<double>(tuples.size()));
    g_sink += sum;
  }
  *done = static_cast<int>(ns.size());
  return summarize(ns).median;
}

// The full simulator decision with the link pick and its explanation, as
// `clovisctl simulate` computes it. One pass: it is the slow path.
double time_decide(const Classifier& cl, const std::vector<clv_tuple>& tuples) {
  const clv_link_state st = cl.compiled().all_up_state();
  core::FlowQuery q;
  uint64_t sum = 0;
  auto t0 = Clock::now();
  for (const auto& t : tuples) {
    q.tuple = t;
    core::Decision d = cl.decide(q, st);
    sum += static_cast<uint64_t>(d.link + 1) + d.rule_id.value_or(0) + static_cast<uint64_t>(d.verdict);
  }
  double ns = seconds_since(t0) * 1e9 / static_cast<double>(tuples.size());
  g_sink += sum;
  return ns;
}

// The naive scan over the same tuples, for as long as the budget allows; then
// checks that it and the compiled walk picked the same rule for each.
void time_reference(const Built& b, const Classifier& cl, const std::vector<clv_tuple>& tuples, double budget,
                    ClassifyRow* row) {
  core::FlowQuery q;
  std::vector<std::optional<size_t>> picked;
  auto t0 = Clock::now();
  double elapsed = 0;
  while (picked.size() < tuples.size() && (picked.size() < kRefMin || elapsed < budget)) {
    const size_t end = std::min(tuples.size(), picked.size() + 64);
    while (picked.size() < end) {
      q.tuple = tuples[picked.size()];
      picked.push_back(core::reference_match(b.mapping, q));
    }
    elapsed = seconds_since(t0);
  }
  row->ref_tuples = picked.size();
  row->ref_ns = elapsed * 1e9 / static_cast<double>(picked.size());
  // Rules are generated in priority order, so the compiled rule id is the index.
  for (size_t k = 0; k < picked.size(); ++k) {
    auto got = cl.lookup(tuples[k]);
    g_sink += picked[k].value_or(0);
    if (picked[k].has_value() != got.has_value() || (got && *picked[k] != got->rule_id)) ++row->ref_disagree;
  }
}

std::vector<clv_tuple> make_tuples(const Generated& g, const std::string& set, size_t n, uint64_t seed) {
  Rng rng(seed);
  const auto n_rules = static_cast<uint32_t>(g.rules.size());
  std::vector<clv_tuple> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (set == "random") out.push_back(tuple_in(g.rules[rng.below(n_rules)], rng));
    else if (set == "last") out.push_back(tuple_in(g.rules.back(), rng));
    else out.push_back(tuple_miss(rng));
  }
  return out;
}

void run_size(const Options& o, Mix mix, size_t n, std::vector<BuildRow>& builds,
              std::vector<ClassifyRow>& classifies) {
  const uint64_t seed = o.seed + static_cast<uint64_t>(mix) * 1000003 + n;
  std::fprintf(stderr, "%s %zu rules: build...", to_string(mix), n);
  const Generated g = generate_mapping(mix, n, seed);
  BuildRow br{};
  const Built b = build(g, mix, o.runs(n), &br);
  builds.push_back(br);
  const Classifier cl(b.compiled);
  for (const char* set : {"random", "last", "miss"}) {
    std::fprintf(stderr, " %s", set);
    const auto tuples = make_tuples(g, set, o.tuples, seed ^ 0x5eed);
    ClassifyRow row{mix, n, b.compiled.shapes.size(), set, tuples.size(), 0, 0, 0, 0, 0, 0};
    row.lookup_ns = time_lookup(cl, tuples, o.passes, &row.passes);
    row.decide_ns = time_decide(cl, tuples);
    time_reference(b, cl, tuples, o.ref_budget, &row);
    classifies.push_back(row);
  }
  std::fprintf(stderr, "\n");
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

double ms(double s) {
  return s * 1e3;
}
double mops(double ns) {
  return 1e3 / ns;
}
std::string cell(const Stats& s) {
  return fmt::format("{:.3f} [{:.3f}]", ms(s.median), ms(s.min));
}
std::string json_ms(const Stats& s) {
  return fmt::format("{{\"median\": {:.4f}, \"min\": {:.4f}}}", ms(s.median), ms(s.min));
}

constexpr const char* kBuildRow = "{:<7} {:>7} {:>8} {:>6} {:>8} {:>4}  {:>19} {:>17} {:>17} {:>10} {:>19}\n";
constexpr const char* kClassifyHead = "{:<7} {:>7} {:>6} {:<6}  {:>9} {:>6}  {:>9} {:>6}  {:>10} {:>7} {:>9} {:>8}\n";
constexpr const char* kClassifyRow =
    "{:<7} {:>7} {:>6} {:<6}  {:>9.1f} {:>6.2f}  {:>9.1f} {:>6.2f}  {:>10.0f} {:>7} {:>8.1f}x {:>8}\n";

void print_table(const Options& o, const std::vector<BuildRow>& builds, const std::vector<ClassifyRow>& cls) {
  fmt::print("Load (YAML parse), validate, compile: ms, median [min] of the runs\n");
  fmt::print(fmt::runtime(kBuildRow), "mix", "rules", "yaml KiB", "shapes", "entries", "runs", "load", "validate",
             "compile", "clf index", "load+validate+comp");
  for (const auto& r : builds)
    fmt::print(fmt::runtime(kBuildRow), to_string(r.mix), r.rules, r.yaml_bytes / 1024, r.shapes, r.entries, r.runs,
               cell(r.load), cell(r.validate), cell(r.compile), fmt::format("{:.3f}", ms(r.index.median)),
               cell(r.total));
  fmt::print(
      "\nClassification, one thread, {} tuples per set (lookup: median of up to {} passes;\n"
      "decide: 1 pass; reference: as many tuples as fit its time budget; ref/look = reference ns / lookup ns)\n",
      o.tuples, o.passes);
  fmt::print(fmt::runtime(kClassifyHead), "mix", "rules", "shapes", "set", "lookup ns", "M/s", "decide ns", "M/s",
             "ref ns", "ref n", "ref/look", "disagree");
  for (const auto& r : cls)
    fmt::print(fmt::runtime(kClassifyRow), to_string(r.mix), r.rules, r.shapes, r.set, r.lookup_ns, mops(r.lookup_ns),
               r.decide_ns, mops(r.decide_ns), r.ref_ns, r.ref_tuples, r.ref_ns / r.lookup_ns, r.ref_disagree);
}

void print_json(const Options& o, const std::vector<BuildRow>& builds, const std::vector<ClassifyRow>& cls) {
  fmt::print("{{\n  \"seed\": {}, \"quick\": {}, \"tuples\": {}, \"nproc\": {}, \"cpu\": \"{}\",\n", o.seed, o.quick,
             o.tuples, std::thread::hardware_concurrency(), cpu_model());
  fmt::print("  \"build_ms\": [\n");
  for (size_t i = 0; i < builds.size(); ++i) {
    const auto& r = builds[i];
    fmt::print(
        "    {{\"mix\": \"{}\", \"rules\": {}, \"yaml_bytes\": {}, \"shapes\": {}, \"entries\": {}, "
        "\"warnings\": {}, \"runs\": {}, \"load\": {}, \"validate\": {}, \"compile\": {}, "
        "\"classifier_index\": {}, \"total\": {}}}{}\n",
        to_string(r.mix), r.rules, r.yaml_bytes, r.shapes, r.entries, r.warnings, r.runs, json_ms(r.load),
        json_ms(r.validate), json_ms(r.compile), json_ms(r.index), json_ms(r.total), i + 1 < builds.size() ? "," : "");
  }
  fmt::print("  ],\n  \"classify\": [\n");
  for (size_t i = 0; i < cls.size(); ++i) {
    const auto& r = cls[i];
    fmt::print(
        "    {{\"mix\": \"{}\", \"rules\": {}, \"shapes\": {}, \"set\": \"{}\", \"tuples\": {}, "
        "\"lookup_passes\": {}, \"lookup_ns\": {:.2f}, \"lookup_per_s\": {:.0f}, \"decide_ns\": {:.2f}, "
        "\"decide_per_s\": {:.0f}, \"reference_ns\": {:.1f}, \"reference_tuples\": {}, "
        "\"reference_disagree\": {}}}{}\n",
        to_string(r.mix), r.rules, r.shapes, r.set, r.tuples, r.passes, r.lookup_ns, 1e9 / r.lookup_ns, r.decide_ns,
        1e9 / r.decide_ns, r.ref_ns, r.ref_tuples, r.ref_disagree, i + 1 < cls.size() ? "," : "");
  }
  fmt::print("  ],\n  \"checksum\": {}\n}}\n", g_sink);
}

std::optional<Options> parse_args(int argc, char** argv) {
  Options o;
  auto value = [&](int& i, const char* flag) -> std::optional<std::string> {
    std::string a = argv[i];
    const size_t len = std::strlen(flag);
    if (a.size() > len && a.compare(0, len, flag) == 0 && a[len] == '=') return a.substr(len + 1);
    if (a == flag && i + 1 < argc) return std::string(argv[++i]);
    return std::nullopt;
  };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json") o.json = true;
    else if (a == "--quick") o.quick = true, o.sizes = {10, 1000}, o.tuples = 100000, o.passes = 1, o.ref_budget = 0.05;
    else if (auto v = value(i, "--seed")) o.seed = std::stoull(*v, nullptr, 0);
    else if (auto t = value(i, "--tuples")) o.tuples = std::stoull(*t);
    else if (auto s = value(i, "--sizes")) {
      o.sizes.clear();
      for (size_t p = 0; p < s->size();) {
        size_t c = s->find(',', p);
        o.sizes.push_back(std::stoull(s->substr(p, c == std::string::npos ? std::string::npos : c - p)));
        p = c == std::string::npos ? s->size() : c + 1;
      }
    } else return std::nullopt;
  }
  return o;
}

}  // namespace

int run(int argc, char** argv) {
  std::optional<Options> opts;
  try {
    opts = parse_args(argc, argv);
  } catch (const std::exception&) {
  }
  const bool help = argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0);
  if (help || !opts || opts->tuples == 0 || std::count(opts->sizes.begin(), opts->sizes.end(), 0u) > 0) {
    std::fprintf(help ? stdout : stderr,
                 "usage: clovis-bench-core [--quick] [--json] [--seed N] [--sizes 10,1000,...] [--tuples N]\n"
                 "  --quick  sizes 10,1000, 100k tuples, 3 runs: a smoke run of a few seconds\n"
                 "  --json   machine-readable results on stdout (progress stays on stderr)\n"
                 "See docs/BENCHMARKS.md.\n");
    return help ? 0 : 2;
  }
  const Options& o = *opts;
  std::vector<BuildRow> builds;
  std::vector<ClassifyRow> cls;
  try {
    for (Mix mix : {Mix::kSimple, Mix::kMixed})
      for (size_t n : o.sizes) run_size(o, mix, n, builds, cls);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\nclovis-bench-core: %s (seed %llu)\n", e.what(), static_cast<unsigned long long>(o.seed));
    return 1;
  }
  if (o.json) {
    print_json(o, builds, cls);
  } else {
    fmt::print("clovis-bench-core  seed {:#x}  cpu {} x{}\n\n", o.seed, cpu_model(),
               std::thread::hardware_concurrency());
    print_table(o, builds, cls);
    fmt::print("\nchecksum {:#018x}\n", g_sink);
  }
  return 0;
}

}  // namespace clovis::bench

int main(int argc, char** argv) {
  return clovis::bench::run(argc, argv);
}
