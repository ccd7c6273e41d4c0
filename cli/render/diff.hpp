// The result of apply and rollback: what changed between the running mapping
// and the new one, the generations, warnings and notes.
#pragma once

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

// The whole ApplyResponse for people: the diff, notes and the outcome line on
// `out`, warnings on `err`. `verb` is "applied" or "rolled back".
void apply_text(std::ostream& out, std::ostream& err, const v1::ApplyResponse& r, const std::string& verb,
                const std::string& source, bool color);
nlohmann::json apply_json(const v1::ApplyResponse& r, const std::string& source);

}  // namespace clovis::cli::render
