"""The bad-input table: each malformed input gives one clear error line (exit status 2, no
traceback) or a documented fallback that is logged, and never touches an existing result.

``BAD_INPUTS`` is the table. To see every message, run
``CONTRAFIT_BAD_INPUT_TABLE=table.md pytest tests/test_bad_input.py`` (rows are appended there).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import TINY, toy_rows, write_jsonl

from contrafit.cli import main


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


class Env:
    """Files for one case: good toy data, a tiny model, a scratch folder."""

    def __init__(self, tmp: Path, files: dict[str, Path], model: str):
        self.tmp, self.files, self.model = tmp, files, model

    def train(self, *extra: str, train: Path | None = None, out: str = "run") -> list[str]:
        argv = [
            "train",
            "--train",
            str(train or self.files["train"]),
            "--dev",
            str(self.files["dev"]),
        ]
        argv += ["--model", self.model, "--output", str(self.tmp / out), "--quiet"]
        for o in [*TINY, "phases.*.epochs=2"]:
            argv += ["--set", o]
        return [*argv, *extra]

    def bench(self, *args: str) -> list[str]:
        return ["bench", *args, "--output", str(self.tmp / "grid")]

    def model_folder(self, damage) -> Path:
        """A trained, saved model folder, then damaged by ``damage(folder)``."""
        assert main(self.train(out="saved")) == 0
        folder = self.tmp / "saved" / "model"
        damage(folder)
        return folder


def _bad_json(e):
    return e.train(train=_write(e.tmp / "t.jsonl", '{"text": "a", "label": "x"}\n{"text": oops}\n'))


def _recipe_file(e, text):
    return e.train("--recipe", str(_write(e.tmp / "r.yaml", text)))


# (case, argv builder, expected exit status, expected text in stderr)
BAD_INPUTS = [
    ("train file missing", lambda e: e.train(train=e.tmp / "nope.jsonl"), 2, "nope.jsonl"),
    ("train file empty", lambda e: e.train(train=_write(e.tmp / "t.jsonl", "")), 2, "empty"),
    ("invalid JSON line", _bad_json, 2, "line 2"),
    (
        "non-UTF-8 bytes",
        lambda e: e.train(train=_write(e.tmp / "t.jsonl", b'{"text": "caf\xe9", "label": "x"}\n')),
        2,
        "UTF-8",
    ),
    (
        "label column missing",
        lambda e: e.train(train=write_jsonl(e.tmp / "t.jsonl", [{"text": "a"}, {"text": "b"}])),
        2,
        "label",
    ),
    (
        "text column missing (suggests --text-column)",
        lambda e: e.train(train=write_jsonl(e.tmp / "t.jsonl", [{"sentence": "a", "label": "x"}])),
        2,
        "--text-column",
    ),
    (
        "empty text in train",
        lambda e: e.train(train=write_jsonl(e.tmp / "t.jsonl", [{"text": "", "label": "x"}])),
        2,
        "--allow-empty-text",
    ),
    (
        "single class in train",
        lambda e: e.train(
            train=write_jsonl(
                e.tmp / "t.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": "x"}]
            )
        ),
        2,
        "a single class",
    ),
    (
        "eval labels unseen in training",
        lambda e: e.train(
            "--eval", str(write_jsonl(e.tmp / "e.jsonl", [{"text": "meh", "label": "neutral"}]))
        ),
        2,
        "never appear in training",
    ),
    ("unknown recipe", lambda e: e.train("--recipe", "nope"), 2, "unknown recipe 'nope'"),
    (
        "recipe file: not YAML",
        lambda e: _recipe_file(e, "phases: [unclosed\n"),
        2,
        "r.yaml",
    ),
    (
        "recipe file: unknown phase key",
        lambda e: _recipe_file(
            e, "name: r\nphases:\n  - {name: a, objectives: [cross_entropy], lrr: 1}\n"
        ),
        2,
        "lrr",
    ),
    (
        "recipe: unknown objective",
        lambda e: _recipe_file(e, "name: r\nphases:\n  - {name: a, objectives: [focal]}\n"),
        2,
        "unknown objective 'focal'",
    ),
    (
        "recipe: unknown objective argument",
        lambda e: _recipe_file(
            e, "name: r\nphases:\n  - {name: a, objectives: [{name: supcon, tau: 0.1}]}\n"
        ),
        2,
        "unknown argument(s) ['tau']",
    ),
    (
        "recipe: a phase name that is a path (it names a folder)",
        lambda e: _recipe_file(
            e, "name: r\nphases:\n  - {name: ../../x, objectives: [cross_entropy]}\n"
        ),
        2,
        "no slashes, no '..'",
    ),
    ("--set unknown key", lambda e: e.train("--set", "phases.0.lrr=1"), 2, "lrr"),
    ("--set wrong type", lambda e: e.train("--set", "phases.0.lr=fast"), 2, "expected float"),
    ("--device cuda without a GPU", lambda e: e.train("--device", "cuda"), 2, "no CUDA GPU"),
    (
        "model folder with pickled weights only",
        lambda e: e.train("--model", str(_pickled_model(e.tmp))),
        2,
        "safetensors",
    ),
    (
        "saved model: contrafit.json missing",
        lambda e: _predict(e, e.model_folder(lambda f: (f / "contrafit.json").unlink())),
        2,
        "contrafit.json",
    ),
    (
        "saved model: head weights corrupt",
        lambda e: _predict(e, e.model_folder(lambda f: _write(f / "head.safetensors", b"garbage"))),
        2,
        "head.safetensors",
    ),
    (
        "output folder holds a finished run",
        lambda e: (main(e.train(out="done")), e.train(out="done"))[1],
        2,
        "--overwrite",
    ),
    ("--resume without a checkpoint", lambda e: e.train("--resume"), 2, "no checkpoint"),
    (
        "bench: unknown task, recipe and missing split, all listed",
        lambda e: e.bench("--data-root", str(e.tmp), "--tasks", "zz", "--recipes", "nope"),
        2,
        "unknown recipe 'nope'",
    ),
    (
        "bench: a task name that would write outside the output folder",
        lambda e: e.bench(
            "--config", str(_write(e.tmp / "g.yaml", "tasks: {'../up': {train: a, test: b}}\n"))
        ),
        2,
        "task '../up': use letters",
    ),
    (
        "bench: label noise out of range",
        lambda e: e.bench("--data-root", str(e.tmp), "--tasks", "zz", "--label-noise", "1.5"),
        2,
        "label noise must be in [0, 1)",
    ),
    (
        "loss becomes NaN/inf (lr 1e30): phase, epoch, step and batch named",
        lambda e: e.train("--set", "phases.0.lr=1e30", "--set", "phases.0.warmup_ratio=0"),
        2,
        "phase 'pairs', epoch 0, step 1: the loss is",
    ),
    # documented fallbacks: the run goes on and says what it did
    (
        "text longer than max_length (truncated, logged)",
        lambda e: e.train(
            "--set",
            "model.max_length=8",
            train=write_jsonl(
                e.tmp / "t.jsonl", [{**r, "text": r["text"] * 3} for r in toy_rows(8, 1)]
            ),
        ),
        0,
        "truncated",
    ),
    (
        "a class with one example under SupCon (anchor skipped, no NaN)",
        lambda e: e.train(
            "--recipe",
            "scl",
            train=write_jsonl(
                e.tmp / "t.jsonl", [*toy_rows(6, 1)[:7], {"text": "odd one", "label": "z"}]
            ),
        ),
        0,
        "",
    ),
]


def _pickled_model(tmp: Path) -> Path:
    folder = tmp / "pickled"
    folder.mkdir()
    _write(folder / "config.json", json.dumps({"model_type": "bert"}))
    _write(folder / "pytorch_model.bin", b"\x80\x04 not really a pickle")
    return folder


def _predict(e: Env, folder: Path) -> list[str]:
    return [
        "predict",
        "--model",
        str(folder),
        "--input",
        str(e.files["test"]),
        "--output",
        str(e.tmp / "p.jsonl"),
    ]


@pytest.mark.parametrize(
    "case, build, status, expected", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input(
    case, build, status, expected, tmp_path, toy_files, tiny_model_dir, capsys, caplog
):
    env = Env(tmp_path, toy_files, tiny_model_dir)
    argv = build(env)
    capsys.readouterr()
    caplog.clear()
    assert main(argv) == status, capsys.readouterr().err
    err = capsys.readouterr().err + caplog.text
    assert "Traceback" not in err
    assert expected in err, f"{case}: expected {expected!r} in:\n{err}"
    if os.environ.get("CONTRAFIT_BAD_INPUT_TABLE"):
        shown = next((line for line in err.splitlines() if expected and expected in line), "")
        shown = shown.replace(str(tmp_path), "…").replace("|", "\\|")
        with open(os.environ["CONTRAFIT_BAD_INPUT_TABLE"], "a", encoding="utf-8") as f:
            f.write(f"| {case} | {status} | {shown or '(run completes)'} |\n")
    if status == 0 and argv[0] == "train":
        metrics = json.loads((Path(argv[argv.index("--output") + 1]) / "metrics.json").read_text())
        assert all(p["steps"] > 0 for p in metrics["phases"])


def test_a_failed_run_leaves_a_finished_result_untouched(tmp_path, toy_files, tiny_model_dir):
    env = Env(tmp_path, toy_files, tiny_model_dir)
    assert main(env.train(out="done")) == 0
    before = {p: p.read_bytes() for p in (tmp_path / "done").rglob("*") if p.is_file()}
    assert main(env.train("--set", "phases.0.lr=fast", out="done")) == 2
    assert main(env.train(out="done")) == 2  # refuses to overwrite
    after = {p: p.read_bytes() for p in (tmp_path / "done").rglob("*") if p.is_file()}
    assert after == before
