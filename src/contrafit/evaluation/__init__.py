"""Evaluation: metrics and reports."""

from contrafit.evaluation.metrics import format_report, full_report, summary_metrics

__all__ = ["format_report", "full_report", "summary_metrics"]
