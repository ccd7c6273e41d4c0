// The result of apply and rollback: what changed between the running mapping
// and the new one, the generations, warnings and notes.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include <google/protobuf/repeated_ptr_field.h>
#include <nlohmann/json.hpp>

#include "clovis/v1/agent.pb.h"

namespace clovis::cli::render {

using DiffItems = google::protobuf::RepeatedPtrField<v1::DiffItem>;
using ProtoDiagnostics = google::protobuf::RepeatedPtrField<v1::Diagnostic>;

// Colors only for a terminal, and never when NO_COLOR is set (no-color.org).
bool color_wanted(bool is_tty);

// One line per change, "+ rule  voice", "~ link  mpls  gateway ...",
// "- policy  bulk"; green, yellow and red when `color`.
void diff_text(std::ostream& os, const DiffItems& diff, bool color);

// Diagnostics from clovisd as `clovisctl validate` prints them.
void proto_diagnostics_text(std::ostream& os, const ProtoDiagnostics& d, const std::string& fallback_file);
nlohmann::json proto_diagnostics_json(const ProtoDiagnostics& d, const std::string& fallback_file);

// How much of the diff `apply` and `rollback` show (--diff):
//   auto     every change up to kAutoDiffItems, else those and a summary
//            (people); every change with -o json (scripts);
//   full     every change;
//   summary  only the counts by kind.
// clovisd sends only what will be shown: a 10k-rule diff is 1.7 MB of JSON.
enum class DiffMode { kAuto, kFull, kSummary };
inline constexpr uint32_t kAutoDiffItems = 40;
std::optional<DiffMode> parse_diff_mode(const std::string& s);
// The request's max_diff_items for `mode`; nullopt: every change.
std::optional<uint32_t> diff_items_wanted(DiffMode mode, bool as_json);

// "rule +3 -1 ~9796, link ~1": every change by kind (diff_counts), or from
// the items when clovisd sent no counts.
std::string diff_summary(const v1::ApplyResponse& r);

// The whole ApplyResponse for people: the diff, notes and the outcome line on
// `out`, warnings on `err`. `verb` is "applied" or "rolled back". When
// clovisd sent fewer changes than there are, a line says how many more and a
// summary line counts them all.
void apply_text(std::ostream& out, std::ostream& err, const v1::ApplyResponse& r, const std::string& verb,
                const std::string& source, bool color);

// The ApplyResponse as one JSON document, byte for byte nlohmann's dump(2) of
//   {apply_ms, confirm_deadline_s, diff: [{change, detail, kind, name}...],
//    diff_counts: [{added, changed, kind, removed}...], diff_total, dry_run,
//    generation, notes, previous_generation, warnings}
// with a newline, written without building a JSON object per change.
std::string apply_json_text(const v1::ApplyResponse& r, const std::string& source);

}  // namespace clovis::cli::render
