"""Few-shot benchmark grids: configure, plan (validated up front), run (resumable), report."""

from contrafit.bench.config import Grid, build_grid, read_grid_file
from contrafit.bench.grid import Cell, plan
from contrafit.bench.report import markdown, summarize, write_report
from contrafit.bench.run import failed_cells, finished_results, run_grid
from contrafit.bench.tasks import TaskSource

__all__ = [
    "Cell",
    "Grid",
    "TaskSource",
    "build_grid",
    "failed_cells",
    "finished_results",
    "markdown",
    "plan",
    "read_grid_file",
    "run_grid",
    "summarize",
    "write_report",
]
