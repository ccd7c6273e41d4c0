// Match boxes: a rule's L3/L4 match expanded into (shape, masked key) pairs,
// the unit of the tuple-space tables.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "compiled.hpp"
#include "model.hpp"

namespace clovis::core {

using ShapeSig = std::array<uint8_t, sizeof(clv_shape)>;

// The shape's identity (everything but min_priority).
ShapeSig shape_sig(const clv_shape& s);

// How many boxes expand_match makes of `m`, counted without making them, so
// that the compiler's limits are checked before anything is materialised.
// Saturates at UINT64_MAX (the lists of one big mapping can multiply past it).
uint64_t count_boxes(const Match& m);

// The factors of that count for messages: "64 src x 32 dst x 30 dport
// blocks" (the lists' sizes, those of 1 left out; a port range takes one
// block per aligned power of two it covers).
std::string describe_expansion(const Match& m);

// Expands a match into boxes (one per family x src x dst x proto x port
// prefix combination). nullopt when more than max_boxes would be needed.
std::optional<std::vector<MatchBox>> expand_match(const Match& m, uint32_t iif_id, size_t max_boxes);

// True when every field `outer` matches on is matched at least as finely by
// `inner` (same family): an entry of `outer` can then cover a box of `inner`.
bool shape_covers(const clv_shape& outer, const clv_shape& inner);

// A tuple that lies in the box (its key values, family from the shape).
clv_tuple box_tuple(const MatchBox& b);

// Whether a tuple lies in a box.
bool box_contains(const MatchBox& b, const clv_tuple& t);

// "v4 src/16 dst/24 proto dport&0xffc0" — for messages.
std::string describe_shape(const clv_shape& s);

}  // namespace clovis::core
