// clovisctl completion bash|zsh|fish: prints a shell completion script made
// from the CLI11 command tree of this very binary, so the shipped scripts
// (completions/, checked by tests/unit/test_completions.cpp) can't miss a
// subcommand or a flag. Hidden from --help: it is for packaging, users get the
// installed scripts.
#include <cctype>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "app.hpp"
#include "exit_codes.hpp"

namespace clovis::cli::commands {

namespace {

// What completes a value: nothing known, a path, a directory, or a word list.
enum class Values { kNone, kFile, kDir, kChoices };

struct OptionSpec {
  std::vector<std::string> longs, shorts;  // without dashes
  std::string description;
  bool takes_value = false;
  bool repeatable = false;
  Values values = Values::kNone;
  std::vector<std::string> choices;

  std::vector<std::string> names() const {  // "--file", "-f"
    std::vector<std::string> n;
    for (const auto& l : longs) n.push_back("--" + l);
    for (const auto& s : shorts) n.push_back("-" + s);
    return n;
  }
  std::string label() const { return longs.empty() ? shorts.front() : longs.front(); }
};

struct PositionalSpec {
  std::string name, description;
  bool many = false;
  Values values = Values::kNone;
  std::vector<std::string> choices;
};

struct CommandSpec {
  std::vector<std::string> path;  // empty for clovisctl itself
  std::string description;
  std::vector<OptionSpec> options;
  std::vector<PositionalSpec> positionals;
  std::vector<CommandSpec> subcommands;

  std::string name() const { return path.empty() ? "clovisctl" : path.back(); }
  std::string joined(const std::string& sep) const {
    std::string s;
    for (const auto& p : path) s += (s.empty() ? "" : sep) + p;
    return s;
  }
};

std::string first_line(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
  return line;
}

// Words that can go unquoted into every shell's word lists.
bool plain_word(const std::string& w) {
  if (w.empty()) return false;
  for (char c : w)
    if (!std::isalnum(static_cast<unsigned char>(c)) && std::string("._+-/@%,=").find(c) == std::string::npos)
      return false;
  return true;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string::size_type start = 0, end;
  while ((end = s.find(sep, start)) != std::string::npos) {
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  out.push_back(s.substr(start));
  return out;
}

// CLI11 appends each validator's description to the type name
// ("TEXT:{table,wide,json}", "TEXT:FILE"); that is the only public view of
// them. A set validator (IsMember) gives the choices; the path validators say
// a path is expected. Anything else (ranges, transforms) completes nothing.
void read_validators(const CLI::Option& opt, Values& values, std::vector<std::string>& choices) {
  const auto parts = split(opt.get_type_name(), ':');
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const std::string& v = parts[i];
    if (v == "FILE" || v == "PATH(existing)" || v == "PATH(non-existing)") values = Values::kFile;
    if (v == "DIR") values = Values::kDir;
    if (v.size() < 3 || v.front() != '{' || v.back() != '}' || v.find("->") != std::string::npos) continue;
    auto words = split(v.substr(1, v.size() - 2), ',');
    bool ok = true;
    for (const auto& w : words) ok = ok && plain_word(w);
    if (!ok) continue;
    choices = words;
    values = Values::kChoices;
  }
}

// Without a validator, a name says whether a value is a path: --file, --socket.
Values values_from_name(const std::string& name) {
  std::string lower;  // a positional is named in capitals: FILE
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& word : split(lower, '-')) {
    if (word == "file" || word == "socket") return Values::kFile;
    if (word == "dir" || word == "directory") return Values::kDir;
  }
  return Values::kNone;
}

void add_option(const CLI::Option& opt, CommandSpec& into) {
  if (opt.get_group().empty()) return;  // hidden
  Values values = Values::kNone;
  std::vector<std::string> choices;
  read_validators(opt, values, choices);
  if (opt.nonpositional()) {
    OptionSpec o;
    o.longs = opt.get_lnames();
    o.shorts = opt.get_snames();
    o.description = first_line(opt.get_description());
    o.takes_value = opt.get_items_expected_max() > 0;
    o.repeatable = o.takes_value && opt.get_expected_max() > 1;
    o.values = values == Values::kNone ? values_from_name(o.label()) : values;
    if (!o.takes_value) o.values = Values::kNone;
    o.choices = std::move(choices);
    for (const auto& known : into.options)  // an option group repeats its parent's -h,--help
      if (known.names() == o.names()) return;
    into.options.push_back(std::move(o));
  } else {
    const std::string name = opt.get_name(true);
    PositionalSpec p;
    p.name = name;
    p.description = first_line(opt.get_description());
    p.many = opt.get_expected_max() > 1;
    p.values = values == Values::kNone ? values_from_name(name) : values;
    p.choices = std::move(choices);
    into.positionals.push_back(std::move(p));
  }
}

// Walks one CLI11 App into `into`. Option groups are nameless subcommands
// whose options belong to the enclosing command, so they go first: a
// fallthrough subcommand inherits them.
void collect(const CLI::App& app, CommandSpec& into) {
  for (const CLI::Option* opt : app.get_options()) add_option(*opt, into);
  const auto shown = [](const CLI::App* a) { return !a->get_disabled() && !a->get_group().empty(); };
  const auto groups = [&](const CLI::App* a) { return shown(a) && a->get_name().empty(); };
  const auto commands = [&](const CLI::App* a) { return shown(a) && !a->get_name().empty(); };
  for (const CLI::App* group : app.get_subcommands(groups)) collect(*group, into);
  for (const CLI::App* sub : app.get_subcommands(commands)) {
    CommandSpec child;
    child.path = into.path;
    child.path.push_back(sub->get_name());
    child.description = first_line(sub->get_description());
    if (sub->get_fallthrough())  // the parent's options are accepted here too
      for (const auto& o : into.options) child.options.push_back(o);
    collect(*sub, child);
    into.subcommands.push_back(std::move(child));
  }
}

template <typename F>
void each_command(const CommandSpec& c, F&& f) {
  f(c);
  for (const auto& s : c.subcommands) each_command(s, f);
}

std::string join(const std::vector<std::string>& words, const std::string& sep = " ") {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : sep) + w;
  return s;
}

std::string usage_names(const OptionSpec& o) {
  return join(o.names(), ", ") + (o.takes_value ? " VALUE" : "");
}

// ---- bash -----------------------------------------------------------------

const char* const kBashMain = R"(# _clovisctl_value PATH OPTION WORD: completes WORD as a value of OPTION.
_clovisctl_value() {
  local choices=''
  _clovisctl_choices "$1" "$2"
  if [[ -n $choices ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$choices" -- "$3")
  elif [[ " $files " == *" $2 "* ]]; then
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$3")
  elif [[ " $dirs " == *" $2 "* ]]; then
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -d -- "$3")
  fi
}

_clovisctl() {
  local cur=${COMP_WORDS[COMP_CWORD]} path='' opt='' skip=0 i w
  local subs opts valued files dirs pos poswords
  _clovisctl_spec ''
  # Find the subcommand path, skipping the values of options that take one.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if ((skip)); then
      # "--opt=value" arrives as --opt, =, value ('=' is in COMP_WORDBREAKS).
      [[ $w == = ]] || skip=0
      continue
    fi
    case $w in
      --) break ;;
      -*=*) ;;
      -*) [[ " $valued " == *" $w "* ]] && opt=$w skip=1 ;;
      *) [[ " $subs " == *" $w "* ]] && path=${path:+$path }$w && _clovisctl_spec "$path" ;;
    esac
  done
  COMPREPLY=()
  if ((skip)); then
    [[ $cur == = ]] && cur=''
    _clovisctl_value "$path" "$opt" "$cur"
  elif [[ $cur == -*=* ]]; then
    opt=${cur%%=*}
    [[ " $valued " == *" $opt "* ]] || return 0
    _clovisctl_value "$path" "$opt" "${cur#*=}"
    COMPREPLY=("${COMPREPLY[@]/#/$opt=}")
  elif [[ $cur == -* || -z $subs$pos$poswords ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
  else
    mapfile -t COMPREPLY < <(compgen -W "$subs $poswords" -- "$cur")
    case $pos in
      file) compopt -o filenames 2>/dev/null; mapfile -t -O ${#COMPREPLY[@]} COMPREPLY < <(compgen -f -- "$cur") ;;
      dir) compopt -o filenames 2>/dev/null; mapfile -t -O ${#COMPREPLY[@]} COMPREPLY < <(compgen -d -- "$cur") ;;
    esac
  fi
  return 0
}

complete -F _clovisctl clovisctl
)";

void bash_entry(std::ostream& os, const CommandSpec& c) {
  os << "    # " << (c.path.empty() ? "clovisctl" : c.joined(" ") + ": " + c.description) << "\n";
  std::vector<std::string> subs, opts, valued, files, dirs, poswords;
  for (const auto& s : c.subcommands) {
    subs.push_back(s.name());
    os << "    #   " << s.name() << "  " << s.description << "\n";
  }
  for (const auto& o : c.options) {
    os << "    #   " << usage_names(o) << "  " << o.description << "\n";
    for (const auto& n : o.names()) {
      opts.push_back(n);
      if (o.takes_value) valued.push_back(n);
      if (o.values == Values::kFile) files.push_back(n);
      if (o.values == Values::kDir) dirs.push_back(n);
    }
  }
  std::string pos;
  for (const auto& p : c.positionals) {
    os << "    #   " << p.name << (p.many ? "..." : "") << "  " << p.description << "\n";
    if (p.values == Values::kFile) pos = "file";
    if (p.values == Values::kDir && pos.empty()) pos = "dir";
    poswords.insert(poswords.end(), p.choices.begin(), p.choices.end());
  }
  os << "    '" << c.joined(" ") << "')\n";
  const std::pair<const char*, std::string> vars[] = {
      {"subs", join(subs)}, {"opts", join(opts)}, {"valued", join(valued)},    {"files", join(files)},
      {"dirs", join(dirs)}, {"pos", pos},         {"poswords", join(poswords)}};
  for (const auto& [var, value] : vars)
    if (!value.empty()) os << "      " << var << "='" << value << "'\n";
  os << "      ;;\n";
}

void print_bash(std::ostream& os, const CommandSpec& root) {
  os << "# bash completion for clovisctl                            -*- shell-script -*-\n"
        "# Generated by `clovisctl completion bash` from clovisctl's CLI11 command tree.\n"
        "# Do not edit: regenerate it (completions/README.md) when the CLI changes.\n\n"
        "# _clovisctl_spec PATH: what the command at PATH (\"\" for clovisctl itself,\n"
        "# \"get mapping\" for a nested one) accepts: subs (subcommands), opts (options),\n"
        "# valued (options that take a value), files and dirs (options whose value is a\n"
        "# path), pos (file or dir: what positional arguments are), poswords (their\n"
        "# allowed values).\n"
        "_clovisctl_spec() {\n"
        "  subs='' opts='' valued='' files='' dirs='' pos='' poswords=''\n"
        "  case $1 in\n";
  each_command(root, [&](const CommandSpec& c) { bash_entry(os, c); });
  os << "  esac\n}\n\n"
        "# _clovisctl_choices PATH OPTION: sets choices, the values OPTION accepts.\n"
        "_clovisctl_choices() {\n"
        "  case $1/$2 in\n";
  each_command(root, [&](const CommandSpec& c) {
    for (const auto& o : c.options) {
      if (o.choices.empty()) continue;
      std::vector<std::string> keys;
      for (const auto& n : o.names()) keys.push_back("'" + c.joined(" ") + "/" + n + "'");
      os << "    " << join(keys, " | ") << ") choices='" << join(o.choices) << "' ;;\n";
    }
  });
  os << "  esac\n}\n\n" << kBashMain;
}

// ---- zsh ------------------------------------------------------------------

// Text for a single-quoted _arguments spec: [description] needs its brackets
// escaped, and a quote ends the string.
std::string zsh_quote(const std::string& s, bool in_brackets) {
  std::string out;
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else if (in_brackets && (c == '[' || c == ']' || c == '\\')) out += std::string("\\") + c;
    else if (!in_brackets && (c == ':' || c == '\\')) out += std::string("\\") + c;
    else out += c;
  }
  return out;
}

std::string zsh_action(Values values, const std::vector<std::string>& choices) {
  switch (values) {
    case Values::kFile: return "_files";
    case Values::kDir: return "_files -/";
    case Values::kChoices: return "(" + join(choices) + ")";
    case Values::kNone: break;
  }
  return " ";  // a value is expected; nothing to offer
}

std::string zsh_function(const CommandSpec& c) {
  std::string name = "_clovisctl";
  for (const auto& p : c.path) {
    name += "_";
    for (char ch : p) name += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  }
  return name;
}

void zsh_option_specs(std::ostream& os, const CommandSpec& c) {
  for (const auto& o : c.options) {
    const auto names = o.names();
    const std::string excl = o.repeatable ? "*" : "(" + join(names) + ")";
    for (const auto& n : names) {
      os << "    '" << excl << n;
      if (o.takes_value) os << (n.size() == 2 ? "+" : "=");
      os << "[" << zsh_quote(o.description, true) << "]";
      if (o.takes_value) os << ":" << o.label() << ":" << zsh_action(o.values, o.choices);
      os << "' \\\n";
    }
  }
}

void zsh_command(std::ostream& os, const CommandSpec& c) {
  os << "# " << (c.path.empty() ? "clovisctl" : "clovisctl " + c.joined(" ")) << "\n" << zsh_function(c) << "() {\n";
  if (c.subcommands.empty()) {
    os << "  _arguments -s -S \\\n";
    zsh_option_specs(os, c);
    for (const auto& p : c.positionals)
      os << "    '" << (p.many ? "*" : "") << ":" << zsh_quote(p.name, false) << ":" << zsh_action(p.values, p.choices)
         << "' \\\n";
    os << "    && return 0\n  return 1\n}\n\n";
    return;
  }
  os << "  local curcontext=$curcontext state state_descr line ret=1\n"
        "  local -A opt_args\n"
        "  _arguments -C -s -S \\\n";
  zsh_option_specs(os, c);
  os << "    ': :->subcommand' \\\n"
        "    '*:: :->args' \\\n"
        "    && ret=0\n"
        "  case $state in\n"
        "    subcommand)\n"
        "      local -a subcommands=(\n";
  for (const auto& s : c.subcommands)
    os << "        '" << zsh_quote(s.name(), false) << ":" << zsh_quote(s.description, false) << "'\n";
  const std::string context = "clovisctl" + (c.path.empty() ? "" : "-" + c.joined("-"));
  os << "      )\n"
        "      _describe -t subcommands '"
     << context << " subcommand' subcommands && ret=0\n"
     << "      ;;\n"
        "    args)\n"
        "      curcontext=${curcontext%:*:*}:"
     << context << "-$words[1]:\n"
     << "      case $words[1] in\n";
  for (const auto& s : c.subcommands) os << "        " << s.name() << ") " << zsh_function(s) << " && ret=0 ;;\n";
  os << "      esac\n"
        "      ;;\n"
        "  esac\n"
        "  return ret\n"
        "}\n\n";
}

void print_zsh(std::ostream& os, const CommandSpec& root) {
  os << "#compdef clovisctl\n"
        "# zsh completion for clovisctl.\n"
        "# Generated by `clovisctl completion zsh` from clovisctl's CLI11 command tree.\n"
        "# Do not edit: regenerate it (completions/README.md) when the CLI changes.\n\n";
  each_command(root, [&](const CommandSpec& c) { zsh_command(os, c); });
  os << "_clovisctl \"$@\"\n";
}

// ---- fish -----------------------------------------------------------------

std::string fish_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

// __fish_use_subcommand and __fish_seen_subcommand_from can't tell
// `clovisctl get mapping` from a top-level `mapping`, nor skip --socket's
// value; __clovisctl_at walks the command line with the tree instead.
const char* const kFishHelpers = R"(# The subcommand path typed so far ("" for clovisctl itself, "get mapping"
# for a nested one), skipping the values of options that take one.
function __clovisctl_path
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l path
    set -l skip 0
    for t in $tokens
        if test $skip = 1
            set skip 0
            continue
        end
        if test "$t" = --
            break
        end
        switch $t
            case '-*=*'
            case '-*'
                contains -- $t (__clovisctl_valued $path); and set skip 1
            case '*'
                contains -- $t (__clovisctl_subcommands $path); and set -a path $t
        end
    end
    string join ' ' -- $path
end

# True when the command line is at exactly this subcommand path.
function __clovisctl_at
    set -l path (__clovisctl_path)
    test "$path" = "$argv"
end

)";

void fish_lists(std::ostream& os, const CommandSpec& root) {
  os << "function __clovisctl_subcommands\n    switch \"$argv\"\n";
  each_command(root, [&](const CommandSpec& c) {
    if (c.subcommands.empty()) return;
    std::vector<std::string> subs;
    for (const auto& s : c.subcommands) subs.push_back(s.name());
    os << "        case " << fish_quote(c.joined(" ")) << "\n            printf '%s\\n' " << join(subs) << "\n";
  });
  os << "    end\nend\n\nfunction __clovisctl_valued\n    switch \"$argv\"\n";
  each_command(root, [&](const CommandSpec& c) {
    std::vector<std::string> valued;
    for (const auto& o : c.options)
      if (o.takes_value)
        for (const auto& n : o.names()) valued.push_back(n);
    if (valued.empty()) return;
    os << "        case " << fish_quote(c.joined(" ")) << "\n            printf '%s\\n' " << join(valued) << "\n";
  });
  os << "    end\nend\n\n";
}

const char* const kFishDirectories = "'(__fish_complete_directories (commandline -ct))'";

void fish_command(std::ostream& os, const CommandSpec& c) {
  const std::string at = c.path.empty() ? "__clovisctl_at" : "__clovisctl_at " + c.joined(" ");
  const std::string head = "complete -c clovisctl -n " + fish_quote(at) + " ";
  os << "# " << (c.path.empty() ? "clovisctl" : "clovisctl " + c.joined(" ")) << "\n";
  for (const auto& s : c.subcommands) os << head << "-a " << s.name() << " -d " << fish_quote(s.description) << "\n";
  for (const auto& o : c.options) {
    os << head;
    for (const auto& s : o.shorts) os << "-s " << s << " ";
    for (const auto& l : o.longs) os << "-l " << l << " ";
    if (o.values == Values::kFile) os << "-r -F ";
    else if (o.takes_value) os << "-x ";
    if (o.values == Values::kDir) os << "-a " << kFishDirectories << " ";
    if (!o.choices.empty()) os << "-a " << fish_quote(join(o.choices)) << " ";
    os << "-d " << fish_quote(o.description) << "\n";
  }
  for (const auto& p : c.positionals) {
    if (p.values == Values::kNone) continue;
    os << head;
    if (p.values == Values::kFile) os << "-F ";
    if (p.values == Values::kDir) os << "-a " << kFishDirectories << " ";
    if (!p.choices.empty()) os << "-a " << fish_quote(join(p.choices)) << " ";
    os << "-d " << fish_quote(p.name + ": " + p.description) << "\n";
  }
  os << "\n";
}

void print_fish(std::ostream& os, const CommandSpec& root) {
  os << "# fish completion for clovisctl.\n"
        "# Generated by `clovisctl completion fish` from clovisctl's CLI11 command tree.\n"
        "# Do not edit: regenerate it (completions/README.md) when the CLI changes.\n\n"
     << kFishHelpers;
  fish_lists(os, root);
  os << "complete -c clovisctl -f\n\n";
  each_command(root, [&](const CommandSpec& c) { fish_command(os, c); });
}

}  // namespace

void add_completion(CLI::App& app, Context& ctx) {
  auto shell = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("completion", "Print a completion script for bash, zsh or fish (for packaging)");
  cmd->group("");  // hidden from --help: users get the installed scripts
  cmd->add_option("shell", *shell, "bash, zsh or fish")->required()->check(CLI::IsMember({"bash", "zsh", "fish"}));
  // The tree is walked when the command runs, so it holds every subcommand
  // registered after this one too.
  on_run(cmd, ctx, [&app, shell, &ctx] {
    CommandSpec root;
    root.description = first_line(app.get_description());
    collect(app, root);
    if (*shell == "bash") print_bash(*ctx.out, root);
    else if (*shell == "zsh") print_zsh(*ctx.out, root);
    else print_fish(*ctx.out, root);
    return kExitOk;
  });
}

}  // namespace clovis::cli::commands
