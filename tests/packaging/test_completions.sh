#!/usr/bin/env bash
# Shell completions, driven through the real shells and checked against the
# command tree of the built clovisctl (its --help, command by command):
#  - the committed scripts in completions/ are what `clovisctl completion`
#    prints (else they are stale: see completions/README.md);
#  - bash: completions/clovisctl.bash is sourced in `bash -c` and the function
#    it registers with `complete` is called the way readline calls it
#    (COMP_WORDS, COMP_CWORD) for every command of the tree;
#  - fish: `complete -C` with completions/clovisctl.fish sourced;
#  - zsh: `zsh -n`, then real completion in an interactive zsh on a zpty with
#    completions/ on $fpath and compinit.
#
#   tests/packaging/test_completions.sh [PATH/TO/clovisctl]
#
# clovisctl defaults to $CLOVIS_BUILD_DIR/cli/clovisctl (CLOVIS_BUILD_DIR
# defaults to <repo>/build). Without fish or zsh their checks are skipped,
# unless CLOVIS_REQUIRE_PRIVILEGED=1 (CI), which makes a skip a failure.
# Exit status 0 when every check passed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:-${CLOVIS_BUILD_DIR:-$repo/build}/cli/clovisctl}
[[ $bin == /* ]] || bin=$PWD/$bin
dir=$repo/completions

# shellcheck source=tests/packaging/report.sh
. "$repo/tests/packaging/report.sh"

# check NAME GOT WANT...: every WANT is a line of GOT.
check() {
  local name=$1 got=$2 missing=() w
  shift 2
  for w in "$@"; do grep -qxF -- "$w" <<<"$got" || missing+=("$w"); done
  if [ ${#missing[@]} -eq 0 ]; then
    pass "$name"
  else
    fail "$name" "missing: ${missing[*]}"$'\n'"got: $(tr '\n' ' ' <<<"$got")"
  fi
}

# check_same NAME GOT WANT...: GOT's lines are exactly the WANTs, in any order.
check_same() {
  local name=$1 got want
  got=$(grep -v '^$' <<<"$2" | sort -u)
  shift 2
  want=$(printf '%s\n' "$@" | grep -v '^$' | sort -u)
  if [ "$got" = "$want" ]; then
    pass "$name"
  else
    fail "$name" "want: $(tr '\n' ' ' <<<"$want")"$'\n'"got:  $(tr '\n' ' ' <<<"$got")"
  fi
}

# ---- the command tree, from the binary ------------------------------------

# tree_subcommands [PATH...]: the subcommands `clovisctl PATH --help` lists.
tree_subcommands() {
  "$bin" "$@" --help | awk '/^Subcommands:$/ {on = 1; next} /^$/ {on = 0} on && /^  [^ ]/ {print $1}'
}

# tree_long_flags [PATH...]: the long options `clovisctl PATH --help` lists.
tree_long_flags() {
  "$bin" "$@" --help | awk '/^  -/ {
    n = split($1, names, ",")
    for (i = 1; i <= n; i++) if (names[i] ~ /^--/) { sub(/[{=].*/, "", names[i]); print names[i] } }'
}

if [ ! -x "$bin" ]; then
  fail "clovisctl" "no clovisctl binary at $bin (build it, or pass its path)"
  echo "$passed passed, $failed failed"
  exit 1
fi

# Every command path: "" is clovisctl itself, "get mapping" a nested command.
paths=("")
collect() {
  local s subs
  mapfile -t subs < <(tree_subcommands "$@")
  for s in "${subs[@]}"; do
    paths+=("${*:+$* }$s")
    collect "$@" "$s"
  done
}
collect
mapfile -t top < <(tree_subcommands)

# ---- the committed scripts are up to date ---------------------------------

for pair in bash:clovisctl.bash zsh:_clovisctl fish:clovisctl.fish; do
  shell=${pair%%:*} file=${pair#*:}
  if [ ! -f "$dir/$file" ]; then
    fail "completions/$file is committed" "missing; see completions/README.md"
  elif "$bin" completion "$shell" | cmp -s - "$dir/$file"; then
    pass "completions/$file is what \`clovisctl completion $shell\` prints"
  else
    fail "completions/$file is what \`clovisctl completion $shell\` prints" \
      "stale: the command tree changed; regenerate (completions/README.md):
$("$bin" completion "$shell" | diff -u "$dir/$file" - | head -20)"
  fi
done

# ---- bash -----------------------------------------------------------------

# bash_complete WORD...: what bash completes for the last WORD after
# `clovisctl WORD...`, one per line.
bash_complete() {
  (cd "$tmp/files" && bash --norc --noprofile -c '
    source "$1" || exit 1
    shift
    spec=$(complete -p clovisctl) || exit 1
    fn=${spec#*-F }
    fn=${fn%% *}
    COMP_WORDS=(clovisctl "$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="${COMP_WORDS[*]}" COMP_POINT=${#COMP_LINE} COMP_TYPE=9 COMP_KEY=9
    "$fn" clovisctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf "%s\n" "${COMPREPLY[@]}"' _ "$dir/clovisctl.bash" "$@" 2>&1)
}

mkdir -p "$tmp/files/maps"
touch "$tmp/files/wan.yaml" "$tmp/files/maps/edge.yaml"

check_same "bash: \`clovisctl \` completes the subcommands of the tree" "$(bash_complete "")" "${top[@]}"
for want in validate simulate apply flows links; do
  if printf '%s\n' "${top[@]}" | grep -qxF "$want"; then
    check "bash: \`clovisctl \` offers $want" "$(bash_complete "")" "$want"
  else
    skip "bash: \`clovisctl \` offers $want" "$want is not in clovisctl's command tree yet"
  fi
done
for p in "${paths[@]}"; do
  read -ra words <<<"$p"
  mapfile -t flags < <(tree_long_flags "${words[@]}")
  mapfile -t subs < <(tree_subcommands "${words[@]}")
  check "bash: \`clovisctl ${p:+$p }--\` offers every long flag of \`clovisctl ${p:+$p }--help\`" \
    "$(bash_complete "${words[@]}" --)" "${flags[@]}"
  [ -z "$p" ] || [ ${#subs[@]} -eq 0 ] || check_same "bash: \`clovisctl $p \` completes its subcommands" \
    "$(bash_complete "${words[@]}" "")" "${subs[@]}"
done
check "bash: \`clovisctl validate --\`" "$(bash_complete validate --)" --file --output
if tree_long_flags flows | grep -qx -- --watch; then
  check "bash: \`clovisctl flows --\`" "$(bash_complete flows --)" --watch
else
  skip "bash: \`clovisctl flows --\` offers --watch" "flows has no --watch in this build"
fi
check_same "bash: \`clovisctl validate -o \` completes the formats" "$(bash_complete validate -o "")" table wide json
check_same "bash: \`clovisctl validate --output=j\` (split at '=')" "$(bash_complete validate --output = j)" json
check_same "bash: \`clovisctl validate -f \` completes files" "$(bash_complete validate -f "")" wan.yaml maps
check_same "bash: \`clovisctl validate --file m\` completes files" "$(bash_complete validate --file m)" maps
check_same "bash: \`clovisctl --socket /x va\` skips the option's value" "$(bash_complete --socket /x va)" validate
check_same "bash: \`clovisctl validate -q -\` offers no subcommand" \
  "$(bash_complete validate -q - | grep -v '^-')" ""

# ---- fish -----------------------------------------------------------------

# fish_complete LINE: fish's completions for LINE (candidates only).
fish_complete() {
  # shellcheck disable=SC2016 # fish expands $argv
  (cd "$tmp/files" && fish --no-config -c 'source $argv[1]; complete -C $argv[2]' "$dir/clovisctl.fish" "$1" 2>&1) |
    cut -f1
}

if ! command -v fish >/dev/null; then
  skip "fish completions" "fish is not installed (apt-get install fish)"
elif ! fish --no-config -n "$dir/clovisctl.fish" 2>"$tmp/fish.err"; then
  fail "fish: clovisctl.fish parses" "$(cat "$tmp/fish.err")"
else
  pass "fish: clovisctl.fish parses"
  check_same "fish: \`clovisctl \` completes the subcommands of the tree" "$(fish_complete "clovisctl ")" "${top[@]}"
  for p in "${paths[@]}"; do
    read -ra words <<<"$p"
    mapfile -t flags < <(tree_long_flags "${words[@]}")
    check "fish: \`clovisctl ${p:+$p }--\` offers every long flag" "$(fish_complete "clovisctl ${p:+$p }--")" \
      "${flags[@]}"
  done
  check "fish: \`clovisctl validate --\`" "$(fish_complete "clovisctl validate --")" --file --output
  check_same "fish: \`clovisctl validate -o \` completes the formats" "$(fish_complete "clovisctl validate -o ")" \
    table wide json
  check_same "fish: \`clovisctl validate -f \` completes files" "$(fish_complete "clovisctl validate -f ")" \
    wan.yaml maps/
  check_same "fish: \`clovisctl --socket /x va\` skips the option's value" \
    "$(fish_complete "clovisctl --socket /x va")" validate
fi

# ---- zsh ------------------------------------------------------------------

# zsh_complete LINE: what zsh's completion system adds for LINE: an
# interactive zsh on a pseudo-terminal with compinit, compadd wrapped to log.
cat >"$tmp/capture.zsh" <<'EOF'
zmodload zsh/zpty || exit 2
fpath_dir=$1 out=$2 line=$3
rm -f $out $out.ready $out.done
: >$out
cat >$out.rc <<RC
PS1='' RPROMPT=''
unsetopt autolist listambiguous beep
fpath=($fpath_dir \$fpath)
autoload -Uz compinit && compinit -u -D
compadd() {
  if (( \${@[(I)-[OAD]]} )); then builtin compadd "\$@"; return; fi
  local -a hits
  builtin compadd -A hits "\$@"
  print -rl -- \$hits >>$out
  builtin compadd "\$@"
}
: >$out.ready
RC
zpty z zsh -f -i
zpty -w z "source $out.rc"
for i in {1..200}; do [[ -e $out.ready ]] && break; sleep 0.05; done
sleep 0.2
# TAB completes, ^U clears the line, then a marker says zsh is done.
zpty -w z "$line"$'\t'$'\x15'": >$out.done"$'\n'
for i in {1..200}; do [[ -e $out.done ]] && break; sleep 0.05; done
zpty -d z
[[ -e $out.done ]] || { print -u2 "zsh did not finish completing '$line'"; exit 2; }
cat $out
EOF
zsh_complete() { (cd "$tmp/files" && timeout 30 zsh -f "$tmp/capture.zsh" "$dir" "$tmp/zsh.out" "$1" 2>&1); }

if ! command -v zsh >/dev/null; then
  skip "zsh completions" "zsh is not installed (apt-get install zsh)"
elif ! zsh -n "$dir/_clovisctl" 2>"$tmp/zsh.err"; then
  fail "zsh: zsh -n _clovisctl" "$(cat "$tmp/zsh.err")"
elif ! zsh -fc 'zmodload zsh/zpty' 2>/dev/null; then
  pass "zsh: zsh -n _clovisctl"
  skip "zsh completion" "zsh has no zsh/zpty module"
else
  pass "zsh: zsh -n _clovisctl"
  check_same "zsh: \`clovisctl \` completes the subcommands of the tree" "$(zsh_complete "clovisctl ")" "${top[@]}"
  for p in "${paths[@]}"; do
    read -ra words <<<"$p"
    mapfile -t flags < <(tree_long_flags "${words[@]}")
    check "zsh: \`clovisctl ${p:+$p }--\` offers every long flag" "$(zsh_complete "clovisctl ${p:+$p }--")" \
      "${flags[@]}"
  done
  check_same "zsh: \`clovisctl validate -o \` completes the formats" "$(zsh_complete "clovisctl validate -o ")" \
    table wide json
  check "zsh: \`clovisctl validate -f \` completes files" "$(zsh_complete "clovisctl validate -f ")" wan.yaml maps
  check_same "zsh: \`clovisctl --socket /x va\` skips the option's value" \
    "$(zsh_complete "clovisctl --socket /x va")" validate
fi

summary="$passed passed, $failed failed"
[ "$skipped" -eq 0 ] || summary+=" ($skipped skipped)"
echo "$summary"
[ "$failed" -eq 0 ]
