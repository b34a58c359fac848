import json

import pytest

from contrafit.bench import plan, summarize
from contrafit.bench.compare import paired
from contrafit.errors import ConfigError


def _cells(recipe, accs, task="t"):
    return [
        {
            "task": task,
            "recipe": recipe,
            "seed": s,
            "shots": 16,
            "noise": 0.0,
            "accuracy": a,
            "macro_f1": a,
            "mcc": a,
            "train_seconds": 1.0,
            "predict_seconds": 0.1,
        }
        for s, a in zip([1, 2, 3, 4], accs, strict=True)
    ]


def test_paired_comparison_counts_and_tests():
    results = _cells("ce", [0.5, 0.6, 0.7, 0.8]) + _cells("new", [0.6, 0.6, 0.9, 0.7])
    row = paired(results, "new", "ce")
    assert (row["wins"], row["ties"], row["losses"]) == (2, 1, 1)
    assert row["mean_diff"] == pytest.approx((0.1 + 0 + 0.2 - 0.1) / 4)
    assert 0 < row["t_p"] < 1 and 0 < row["wilcoxon_p"] <= 1


def test_summary_mean_std_worst_seed():
    (row,) = summarize(_cells("ce", [0.5, 0.6, 0.7, 0.8]))
    assert row["accuracy_mean"] == pytest.approx(0.65) and row["worst_seed"] == 1
    assert row["accuracy_std"] == pytest.approx(0.1291, abs=1e-4)


def test_bad_grid_fails_before_training_with_every_problem(tmp_path):
    (tmp_path / "a" / "16-1").mkdir(parents=True)
    for split in ("train", "dev"):
        (tmp_path / "a" / "16-1" / f"{split}.jsonl").write_text(
            json.dumps({"text": "x", "label": "y"})
        )
    with pytest.raises(ConfigError) as e:
        plan(tmp_path, ["a", "b"], ["ce", "nope"], [1])
    msg = str(e.value)
    assert "unknown task 'b'" in msg and "unknown recipe 'nope'" in msg
    assert "missing split file" in msg and "test.jsonl" in msg


def test_plan_is_the_full_product(tmp_path):
    for seed in (1, 2):
        folder = tmp_path / "a" / f"16-{seed}"
        folder.mkdir(parents=True)
        for split in ("train", "dev", "test"):
            (folder / f"{split}.jsonl").write_text("{}")
    cells = plan(tmp_path, ["a"], ["ce", "scl"], [1, 2], noise=[0.0, 0.2])
    assert len(cells) == 8 and len({c.key for c in cells}) == 8
