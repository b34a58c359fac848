"""Classification metrics: accuracy, macro-F1, MCC, a per-class report and the confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
)


def summary_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, float]:
    """The three headline numbers (cheap; used on dev every epoch)."""
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "mcc": float(matthews_corrcoef(y_true, y_pred)),
    }


def full_report(y_true: Sequence[int], y_pred: Sequence[int], labels: list[str]) -> dict[str, Any]:
    ids = list(range(len(labels)))
    report = classification_report(
        y_true, y_pred, labels=ids, target_names=labels, output_dict=True, zero_division=0
    )
    return {
        **summary_metrics(y_true, y_pred),
        "n": len(y_true),
        "per_class": {name: report[name] for name in labels},
        "confusion_matrix": {
            "labels": labels,  # rows: true label, columns: predicted label
            "matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        },
    }


def format_report(metrics: dict[str, Any]) -> str:
    lines = [
        f"accuracy {metrics['accuracy']:.4f}   macro-F1 {metrics['macro_f1']:.4f}   "
        f"MCC {metrics['mcc']:.4f}   (n={metrics['n']})",
        f"{'class':>16} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>7}",
    ]
    for name, r in metrics["per_class"].items():
        lines.append(
            f"{name:>16} {r['precision']:9.3f} {r['recall']:7.3f} {r['f1-score']:6.3f} {int(r['support']):7d}"
        )
    cm = metrics["confusion_matrix"]
    lines.append("confusion matrix (rows: true, columns: predicted): " + " ".join(cm["labels"]))
    lines += ["  " + " ".join(f"{v:5d}" for v in row) for row in cm["matrix"]]
    return "\n".join(lines)
