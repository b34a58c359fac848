"""Training objectives under one contract (see ``base.Objective``)."""

from contrafit.objectives.base import LossOutput, Needs, Objective, Step, TaskInfo, WeightedSum
from contrafit.objectives.registry import OBJECTIVES, build_objective, register

__all__ = [
    "OBJECTIVES",
    "LossOutput",
    "Needs",
    "Objective",
    "Step",
    "TaskInfo",
    "WeightedSum",
    "build_objective",
    "register",
]
