# shellcheck shell=bash disable=SC2034  # sets what the scripts sourcing it read
# The preamble run.sh and memory.sh share; sourced, not run:
#
#   tool_name=CLOVISCTL; . "$(dirname "$0")/common.sh" "$@"
#
# Reads TOOL [BYTES] [SHAPE...] into $tool, $bytes and the array $shapes
# (none given: the default shapes, `gen_mapping.py --list`), makes the
# mapping cache $dir (CLOVIS_BENCH_DIR, default /tmp/clovis-bounded) and
# defines mapping_file SHAPE. $tool_name names TOOL in the usage line.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tool=${1:?usage: $0 ${tool_name:-TOOL} [BYTES] [SHAPE...]}
bytes=${2:-16777216}
shift $(( $# >= 2 ? 2 : 1 ))
shapes=("$@")
if [ ${#shapes[@]} -eq 0 ]; then
  mapfile -t shapes < <(python3 "$here/gen_mapping.py" --list)
  [ ${#shapes[@]} -gt 0 ] || { echo "$0: gen_mapping.py --list named no shapes" >&2; exit 2; }
fi
dir=${CLOVIS_BENCH_DIR:-/tmp/clovis-bounded}
mkdir -p "$dir"

# The path of SHAPE's mapping of $bytes, generated on first use (then cached).
mapping_file() {
  local f="$dir/$1-$bytes.yaml"
  [ -s "$f" ] || python3 "$here/gen_mapping.py" "$1" --bytes "$bytes" > "$f"
  echo "$f"
}
