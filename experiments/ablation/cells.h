// The cells of a study: what each trains, formed from the axes by the study's design
// (study.h). A cell is a name and the key assignments it applies to the base config,
// in order ([set] first, then its axis levels in axis order, then its own `set`; a later
// assignment of a key wins).
//
//   grid, axes attention = [scaled_dot, dot] x norm = [post, pre]:
//     scaled_dot+post (base), scaled_dot+pre, dot+post, dot+pre   (the last axis fastest)
//   one_at_a_time, axes heads = [4, 1, 8], norm = [post, pre]:
//     base (heads-4, post), heads-1, heads-8, pre
//   explicit: the [[cell]] list in file order.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/ablation/study.h"

namespace attnlab::experiments {

struct Cell {
  std::string name;
  bool base = false;  // the cell the others are compared with (exactly one)
  std::vector<KeyAssignment> assignments;
  // "key=value" of what the cell's axis levels and own `set` assign (not [set]), for the
  // summary's table of cells.
  std::vector<std::string> levels;
  std::string where;
};

// Errors (with the study's line): duplicate or invalid cell names, a `base_cell` that
// names no cell, more than one cell marked base.
absl::StatusOr<std::vector<Cell>> ExpandCells(const Study& study);

}  // namespace attnlab::experiments
