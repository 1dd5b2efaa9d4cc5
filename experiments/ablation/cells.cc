#include "experiments/ablation/cells.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/error.h"

namespace attnlab::experiments {
namespace {

std::string Setting(const KeyAssignment& assignment) {
  return absl::StrCat(assignment.key, "=", FormatOptionValue(assignment.value));
}

// A cell from one level index per axis, plus the explicit cell's own assignments.
Cell MakeCell(const Study& study, const std::vector<size_t>& level_of_axis) {
  Cell cell;
  cell.assignments = study.common;
  for (size_t a = 0; a < study.axes.size(); ++a) {
    const Axis& axis = study.axes[a];
    const AxisLevel& level = axis.levels[level_of_axis[a]];
    cell.assignments.insert(cell.assignments.end(), level.assignments.begin(),
                            level.assignments.end());
    for (const KeyAssignment& assignment : level.assignments) {
      cell.levels.push_back(Setting(assignment));
    }
  }
  return cell;
}

// Every cell x seed is a training run; a grid larger than this is a mistake (a few axes
// of ten values make a million cells), refused before it is built.
constexpr size_t kMaxGridCells = 1000;

bool GridTooLarge(const Study& study) {
  size_t size = 1;
  for (const Axis& axis : study.axes) {
    size *= axis.levels.size();  // at most kMaxGridCells x levels: cannot overflow
    if (size > kMaxGridCells) return true;
  }
  return false;
}

std::vector<Cell> Grid(const Study& study) {
  std::vector<Cell> cells;
  std::vector<size_t> index(study.axes.size(), 0);
  while (true) {
    Cell cell = MakeCell(study, index);
    std::vector<std::string> labels;
    for (size_t a = 0; a < study.axes.size(); ++a) {
      labels.push_back(study.axes[a].levels[index[a]].label);
    }
    cell.name = absl::StrJoin(labels, "+");
    cell.where = study.axes.back().levels[index.back()].where;
    cells.push_back(std::move(cell));
    // Odometer: the last axis turns fastest.
    size_t a = study.axes.size();
    while (a > 0 && ++index[a - 1] == study.axes[a - 1].levels.size()) index[--a] = 0;
    if (a == 0) return cells;
  }
}

std::vector<Cell> OneAtATime(const Study& study) {
  std::vector<Cell> cells;
  const std::vector<size_t> base_levels(study.axes.size(), 0);
  Cell base = MakeCell(study, base_levels);
  base.name = "base";
  base.where = study.axes.front().where;
  cells.push_back(std::move(base));
  for (size_t a = 0; a < study.axes.size(); ++a) {
    for (size_t l = 1; l < study.axes[a].levels.size(); ++l) {
      std::vector<size_t> levels = base_levels;
      levels[a] = l;
      Cell cell = MakeCell(study, levels);
      cell.name = study.axes[a].levels[l].label;
      cell.where = study.axes[a].levels[l].where;
      cells.push_back(std::move(cell));
    }
  }
  return cells;
}

std::vector<Cell> Explicit(const Study& study) {
  std::vector<Cell> cells;
  for (const ExplicitCell& spec : study.cells) {
    std::vector<size_t> levels(study.axes.size(), 0);
    for (const auto& [axis_name, label] : spec.picks) {
      for (size_t a = 0; a < study.axes.size(); ++a) {
        if (study.axes[a].name != axis_name) continue;
        for (size_t l = 0; l < study.axes[a].levels.size(); ++l) {
          if (study.axes[a].levels[l].label == label) levels[a] = l;
        }
      }
    }
    Cell cell = MakeCell(study, levels);
    cell.name = spec.name;
    cell.base = spec.base;
    cell.where = spec.where;
    cell.assignments.insert(cell.assignments.end(), spec.assignments.begin(),
                            spec.assignments.end());
    for (const KeyAssignment& assignment : spec.assignments) {
      cell.levels.push_back(Setting(assignment));
    }
    cells.push_back(std::move(cell));
  }
  return cells;
}

}  // namespace

absl::StatusOr<std::vector<Cell>> ExpandCells(const Study& study) {
  std::vector<Cell> cells;
  switch (study.design) {
    case StudyDesign::kGrid:
      if (GridTooLarge(study)) {
        std::vector<size_t> level_counts;
        for (const Axis& axis : study.axes) level_counts.push_back(axis.levels.size());
        return absl::InvalidArgumentError(absl::StrCat(
            study.axes.front().where, ": the grid of ", absl::StrJoin(level_counts, " x "),
            " levels has more than ", kMaxGridCells,
            " cells; use fewer levels, design = \"one_at_a_time\" or a [[cell]] list"));
      }
      cells = Grid(study);
      break;
    case StudyDesign::kOneAtATime:
      cells = OneAtATime(study);
      break;
    case StudyDesign::kExplicit:
      cells = Explicit(study);
      break;
  }
  for (size_t i = 0; i < cells.size(); ++i) {
    if (!IsValidCellName(cells[i].name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          cells[i].where, ": cell name '", cells[i].name,
          "' is a directory name: use letters, digits and . _ + = - only (for values that are "
          "not, write the axis as named `variants`)"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (cells[j].name == cells[i].name) {
        return absl::InvalidArgumentError(absl::StrCat(cells[i].where, ": duplicate cell name '",
                                                       cells[i].name, "' (also at ", cells[j].where,
                                                       ")"));
      }
    }
  }
  const auto marked =
      std::count_if(cells.begin(), cells.end(), [](const Cell& c) { return c.base; });
  if (marked > 1) {
    const Cell& second = *std::find_if(
        std::find_if(cells.begin(), cells.end(), [](const Cell& c) { return c.base; }) + 1,
        cells.end(), [](const Cell& c) { return c.base; });
    return absl::InvalidArgumentError(absl::StrCat(second.where,
                                                   ": a second cell marked `base = true` ('",
                                                   second.name, "'); the study has one base cell"));
  }
  if (!study.base_cell.empty()) {
    if (marked > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(study.base_cell_where,
                       ": `base_cell` and a cell marked `base = true` both name the base"));
    }
    const auto it = std::find_if(cells.begin(), cells.end(),
                                 [&](const Cell& c) { return c.name == study.base_cell; });
    if (it == cells.end()) {
      std::vector<std::string> names;
      for (const Cell& cell : cells) names.push_back(cell.name);
      return absl::InvalidArgumentError(
          absl::StrCat(study.base_cell_where, ": base_cell '", study.base_cell,
                       "' is not a cell (the cells: ", absl::StrJoin(names, ", "), ")"));
    }
    it->base = true;
  } else if (marked == 0) {
    cells.front().base = true;
  }
  return cells;
}

}  // namespace attnlab::experiments
