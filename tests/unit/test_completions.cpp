// Shell completions against the CLI11 command tree. The committed scripts in
// completions/ must be exactly what `clovisctl completion SHELL` prints for
// the current tree (CLOVIS_UPDATE_GOLDEN=1 rewrites them), and the tree is
// walked here on its own to check that every subcommand and flag is in them,
// so a new flag can't ship without its completion.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "app.hpp"
#include "cli_run.hpp"
#include "exit_codes.hpp"
#include "helpers.hpp"

using namespace clovis;
using test::clovisctl;
using test::golden;
using test::Run;

namespace {

// One command of the tree, as a user sees it: its visible subcommands and
// options (option groups folded into the command that holds them).
struct Node {
  std::string path;  // "" for clovisctl, "get mapping"
  std::vector<std::string> subs;
  std::vector<const CLI::Option*> options;
};

bool visible(const CLI::App* a) {
  return !a->get_group().empty() && !a->get_disabled();
}

void walk(const CLI::App& app, const std::string& path, std::vector<Node>& out, std::size_t at) {
  for (const CLI::Option* o : app.get_options())
    if (!o->get_group().empty() && o->nonpositional()) out[at].options.push_back(o);
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (!visible(sub)) continue;
    if (sub->get_name().empty()) {
      walk(*sub, path, out, at);
      continue;
    }
    out[at].subs.push_back(sub->get_name());
    const std::string child = path.empty() ? sub->get_name() : path + " " + sub->get_name();
    out.push_back({child, {}, {}});
    walk(*sub, child, out, out.size() - 1);
  }
}

std::vector<Node> tree(const CLI::App& app) {
  std::vector<Node> nodes{{"", {}, {}}};
  walk(app, "", nodes, 0);
  return nodes;
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> w;
  for (std::string x; in >> x;) w.push_back(x);
  return w;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& w : v) s += (s.empty() ? "" : " ") + w;
  return s;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// The word lists of the bash script's _clovisctl_spec: path -> variable -> words.
using BashSpec = std::map<std::string, std::map<std::string, std::vector<std::string>>>;

BashSpec parse_bash(const std::string& script) {
  BashSpec spec;
  std::istringstream in(script);
  std::string line, path;
  bool in_spec = false, in_entry = false;
  while (std::getline(in, line)) {
    if (line == "_clovisctl_spec() {") in_spec = true;
    if (!in_spec) continue;
    if (line == "}") break;
    if (line.size() > 6 && line.rfind("    '", 0) == 0 && line.compare(line.size() - 2, 2, "')") == 0) {
      path = line.substr(5, line.size() - 7);
      spec[path];
      in_entry = true;
    } else if (in_entry && line.rfind("      ", 0) == 0 && line.find("='") != std::string::npos) {
      const auto eq = line.find("='");
      spec[path][line.substr(6, eq - 6)] = words(line.substr(eq + 2, line.size() - eq - 3));
    }
  }
  return spec;
}

// The choices CLI11 reports for an option ("TEXT:{table,wide,json}").
std::vector<std::string> choices_of(const CLI::Option* o) {
  const std::string t = o->get_type_name();
  const auto open = t.find(":{");
  if (open == std::string::npos) return {};
  std::string set = t.substr(open + 2, t.find('}', open) - open - 2);
  for (char& c : set)
    if (c == ',') c = ' ';
  return words(set);
}

// Every subcommand, option name, value-taking option and choice of the tree
// is in the bash script's word lists.
void check_bash_covers(const std::vector<Node>& nodes, const std::string& script) {
  const BashSpec spec = parse_bash(script);
  REQUIRE_MESSAGE(spec.count(""), "no entry for clovisctl itself in _clovisctl_spec");
  for (const Node& n : nodes) {
    INFO("command path '" << n.path << "'");
    REQUIRE_MESSAGE(spec.count(n.path), "no _clovisctl_spec entry");
    auto vars = spec.at(n.path);
    CHECK(std::set<std::string>(vars["subs"].begin(), vars["subs"].end()) ==
          std::set<std::string>(n.subs.begin(), n.subs.end()));
    for (const CLI::Option* o : n.options) {
      std::vector<std::string> names;
      for (const auto& l : o->get_lnames()) names.push_back("--" + l);
      for (const auto& s : o->get_snames()) names.push_back("-" + s);
      for (const auto& name : names) {
        INFO("option " << name);
        CHECK(contains(vars["opts"], name));
        CHECK(contains(vars["valued"], name) == (o->get_items_expected_max() > 0));
        const auto choices = choices_of(o);
        if (!choices.empty()) {
          const std::string key = "'" + n.path + "/" + name + "'";
          const auto at = script.find(key);
          REQUIRE_MESSAGE(at != std::string::npos, "no _clovisctl_choices entry " << key);
          const auto line = script.substr(at, script.find('\n', at) - at);
          CHECK_MESSAGE(line.find("choices='" + joined(choices) + "'") != std::string::npos, line);
        }
      }
    }
  }
}

// zsh: one function per command naming its subcommands and long options.
// fish: a `complete` line per subcommand and per long option, conditioned
// on the command path.
void check_zsh_fish_cover(const std::vector<Node>& nodes, const std::string& zsh, const std::string& fish) {
  for (const Node& n : nodes) {
    INFO("command path '" << n.path << "'");
    std::string fn = "_clovisctl";
    for (const auto& w : words(n.path)) fn += "_" + w;
    for (char& c : fn)
      if (c == '-') c = '_';
    const auto start = zsh.find("\n" + fn + "() {\n");
    REQUIRE_MESSAGE(start != std::string::npos, "no zsh function " << fn);
    const std::string body = zsh.substr(start, zsh.find("\n}\n", start) - start);
    const std::string at = "-n '__clovisctl_at" + (n.path.empty() ? "" : " " + n.path) + "' ";
    for (const auto& s : n.subs) {
      CHECK_MESSAGE(body.find("'" + s + ":") != std::string::npos, "zsh: subcommand " << s);
      CHECK_MESSAGE(fish.find(at + "-a " + s + " -d ") != std::string::npos, "fish: subcommand " << s);
    }
    for (const CLI::Option* o : n.options)
      for (const auto& l : o->get_lnames()) {
        CHECK_MESSAGE(body.find("--" + l) != std::string::npos, "zsh: --" << l);
        std::istringstream in(fish);
        bool found = false;
        for (std::string line; std::getline(in, line);)
          found = found || (line.find(at) != std::string::npos && line.find(" -l " + l + " ") != std::string::npos);
        CHECK_MESSAGE(found, "fish: --" << l);
      }
  }
}

// The 1-based number of the first line where a and b differ.
int first_difference(const std::string& a, const std::string& b) {
  std::istringstream ia(a), ib(b);
  std::string la, lb;
  int n = 1;
  while (std::getline(ia, la) && std::getline(ib, lb) && la == lb) ++n;
  return n;
}

const std::pair<const char*, const char*> kScripts[] = {
    {"bash", "completions/clovisctl.bash"}, {"zsh", "completions/_clovisctl"}, {"fish", "completions/clovisctl.fish"}};

}  // namespace

TEST_CASE("completions: the committed scripts are what clovisctl completion prints") {
  for (const auto& [shell, file] : kScripts) {
    INFO("shell " << shell);
    auto r = clovisctl({"completion", shell});
    REQUIRE(r.code == cli::kExitOk);
    CHECK(r.err.empty());
    const std::string path = test::source_path(file);
    if (std::getenv("CLOVIS_UPDATE_GOLDEN")) {
      std::ofstream(path) << r.out;
      continue;
    }
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "missing " << path << " (CLOVIS_UPDATE_GOLDEN=1 creates it)");
    std::stringstream want;
    want << in.rdbuf();
    const bool same = want.str() == r.out;  // not CHECK(a == b): doctest would print both scripts
    CHECK_MESSAGE(same, path << " is stale: the command tree changed (first difference: line "
                             << first_difference(want.str(), r.out) << "). Regenerate it with\n"
                             << "  CLOVIS_UPDATE_GOLDEN=1 clovis-unit-tests -tc='completions:*'\n"
                             << "(see completions/README.md)");
  }
}

TEST_CASE("completions: every subcommand and flag of the tree is completed") {
  std::ostringstream out, err;
  cli::Context ctx{&out, &err};
  auto app = cli::make_app(ctx);
  const auto nodes = tree(*app);
  REQUIRE(nodes.size() > 1);
  check_bash_covers(nodes, clovisctl({"completion", "bash"}).out);
  check_zsh_fish_cover(nodes, clovisctl({"completion", "zsh"}).out, clovisctl({"completion", "fish"}).out);

  // Spot checks on commands that exist today.
  const auto spec = parse_bash(clovisctl({"completion", "bash"}).out);
  auto root = spec.at("");
  CHECK(contains(root["subs"], "validate"));
  CHECK(contains(root["subs"], "simulate"));
  CHECK_FALSE(contains(root["subs"], "completion"));  // hidden
  CHECK(contains(root["valued"], "--socket"));
  auto validate = spec.at("validate");
  CHECK(contains(validate["files"], "--file"));
  CHECK(contains(validate["files"], "-f"));
  CHECK_FALSE(contains(validate["valued"], "--quiet"));
}

TEST_CASE("completions: nested subcommands, option groups, choices and positionals") {
  // The generator walks whatever tree it runs in: graft commands that don't
  // exist yet onto the real tree and look at what it prints.
  std::ostringstream out, err;
  cli::Context ctx{&out, &err};
  auto app = cli::make_app(ctx);
  auto* outer = app->add_subcommand("outer", "An outer command");
  auto* inner = outer->add_subcommand("inner", "An inner command: with [brackets] and it's quoted");
  inner->add_option("--pick", "Pick one")->check(CLI::IsMember({"red", "green"}));
  inner->add_option("--when", "A value, no completion");
  std::vector<std::string> downs;
  inner->add_option("--down", downs, "Repeatable");
  inner->add_option("--secret", "Hidden")->group("");
  bool verbose = false;
  inner->add_flag("-v,--verbose", verbose, "A flag");
  inner->add_option_group("Extra", "grouped")->add_option("--extra-file", "In an option group");
  inner->add_option("file", "A file to act on");
  const auto nodes = tree(*app);

  auto print = [&](const std::string& shell) {
    std::ostringstream o;
    ctx.out = &o;
    app->parse(std::vector<std::string>{shell, "completion"});  // CLI11 takes argv reversed
    return o.str();
  };
  const std::string bash = print("bash"), zsh = print("zsh"), fish = print("fish");
  check_bash_covers(nodes, bash);
  check_zsh_fish_cover(nodes, zsh, fish);

  const auto spec = parse_bash(bash);
  CHECK(joined(spec.at("outer").at("subs")) == "inner");
  auto in = spec.at("outer inner");
  CHECK(joined(in["opts"]) == "--help -h --version --socket --pick --when --down --verbose -v --extra-file");
  CHECK(joined(in["valued"]) == "--socket --pick --when --down --extra-file");
  CHECK(joined(in["files"]) == "--socket --extra-file");
  CHECK(joined(in["pos"]) == "file");
  CHECK(bash.find("'outer inner/--pick') choices='red green' ;;") != std::string::npos);
  CHECK(bash.find("--secret") == std::string::npos);

  CHECK(zsh.find("'(--pick)--pick=[Pick one]:pick:(red green)'") != std::string::npos);
  CHECK(zsh.find("'*--down=[Repeatable]:down: '") != std::string::npos);
  CHECK(zsh.find("'(--verbose -v)-v[A flag]'") != std::string::npos);
  CHECK(zsh.find("'inner:An inner command\\: with [brackets] and it'\\''s quoted'") != std::string::npos);
  CHECK(zsh.find("':file:_files'") != std::string::npos);
  CHECK(zsh.find("outer) _clovisctl_outer && ret=0 ;;") != std::string::npos);

  CHECK(fish.find("complete -c clovisctl -n '__clovisctl_at outer inner' -l pick -x -a 'red green' -d 'Pick one'") !=
        std::string::npos);
  CHECK(fish.find("complete -c clovisctl -n '__clovisctl_at outer' -a inner -d 'An inner command: with [brackets] "
                  "and it\\'s quoted'") != std::string::npos);
  CHECK(fish.find(
            "        case 'outer inner'\n            printf '%s\\n' --socket --pick --when --down --extra-file\n") !=
        std::string::npos);
}

TEST_CASE("completions: the completion command is hidden and checks its argument") {
  auto help = clovisctl({"--help"});
  CHECK(help.out.find("completion") == std::string::npos);
  auto bad = clovisctl({"completion", "tcsh"});
  CHECK(bad.code == cli::kExitUsage);
  CHECK(bad.out.empty());
}

TEST_CASE("man: clovisctl(8) has a section for every command and names every long option") {
  std::ifstream in(test::source_path("man/clovisctl.8"));
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string page = ss.str();
  auto roff = [](std::string s) {  // "--authz-socket" as the page spells it: "\-\-authz\-socket"
    std::string out;
    for (char c : s) out += c == '-' ? std::string("\\-") : std::string(1, c);
    return out;
  };
  std::ostringstream out, err;
  cli::Context ctx{&out, &err};
  auto app = cli::make_app(ctx);
  for (const Node& n : tree(*app)) {
    if (n.path.empty()) continue;
    INFO("command '" << n.path << "'");
    if (n.subs.empty()) CHECK_MESSAGE(page.find("\n.SS " + n.path + "\n") != std::string::npos, "no .SS section");
    for (const CLI::Option* o : n.options)
      for (const auto& l : o->get_lnames()) CHECK_MESSAGE(page.find(roff("--" + l)) != std::string::npos, "--" << l);
  }
}
