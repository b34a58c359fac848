"""Few-shot benchmark grids: plan (validated up front), run (resumable), report."""

from contrafit.bench.grid import Cell, plan
from contrafit.bench.report import markdown, summarize
from contrafit.bench.run import run_grid

__all__ = ["Cell", "markdown", "plan", "run_grid", "summarize"]
