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
