import json
import re

import pytest
from conftest import TINY, write_jsonl

from contrafit.cli import main


def _train_args(toy_files, tiny_model_dir, out):
    args = [
        "train",
        "--train",
        str(toy_files["train"]),
        "--dev",
        str(toy_files["dev"]),
        "--eval",
        str(toy_files["test"]),
        "--model",
        tiny_model_dir,
        "--recipe",
        "ce",
        "--output",
        str(out),
        "--quiet",
    ]
    for o in TINY:
        args += ["--set", o]
    return args


def test_train_predict_evaluate(toy_files, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_train_args(toy_files, tiny_model_dir, out)) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"accuracy", "macro_f1", "mcc"} <= set(metrics["eval"])
    assert metrics["train_seconds"] > 0 and metrics["predict_seconds"] > 0
    assert json.loads((out / "config.json").read_text())["recipe"]["name"] == "ce"
    assert (out / "log.jsonl").read_text().count("\n") > 8

    preds = tmp_path / "preds.jsonl"
    assert (
        main(
            [
                "predict",
                "--model",
                str(out / "model"),
                "--input",
                str(toy_files["test"]),
                "--output",
                str(preds),
            ]
        )
        == 0
    )
    lines = [json.loads(x) for x in preds.read_text().splitlines()]
    assert len(lines) == 40
    assert all(set(x["scores"]) == {"neg", "pos"} and x["label"] in x["scores"] for x in lines)
    assert all(abs(sum(x["scores"].values()) - 1) < 1e-5 for x in lines)

    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(out / "model"),
                "--data",
                str(toy_files["test"]),
                "--output",
                str(tmp_path / "m.json"),
            ]
        )
        == 0
    )
    assert "accuracy" in capsys.readouterr().out
    again = json.loads((tmp_path / "m.json").read_text())
    assert again["accuracy"] == pytest.approx(metrics["eval"]["accuracy"])


def test_train_says_how_many_label_texts_joined(toy_files, tiny_model_dir, tmp_path, capsys):
    args = _train_args(toy_files, tiny_model_dir, tmp_path / "run")
    args += ["--set", "recipe.label_texts.copies=3", "--set", "phases.*.max_steps=1"]
    assert main(args) == 0
    assert "trained on 32 examples (+6 label texts)" in capsys.readouterr().out
    args = _train_args(toy_files, tiny_model_dir, tmp_path / "scaled")
    args += ["--set", "recipe.label_texts.copies=3", "--set", "phases.*.max_steps=1"]
    assert main([*args, "--set", "recipe.label_texts.agreement_scale=1"]) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"\(\+\d+ label texts; the names' agreement, kappa \d\.\d\d, earned them\)", out
    )


def test_refuses_to_overwrite_a_finished_run(toy_files, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = _train_args(toy_files, tiny_model_dir, out) + ["--set", "phases.*.max_steps=1"]
    assert main(args) == 0
    before = (out / "metrics.json").read_text()
    capsys.readouterr()
    assert main(args) == 2
    assert "already holds a finished run" in capsys.readouterr().err
    assert (out / "metrics.json").read_text() == before
    assert main(args + ["--overwrite"]) == 0


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda a, p: a.__setitem__(a.index("--train") + 1, str(p / "missing.jsonl")),
            "missing.jsonl: file not found",
        ),
        (lambda a, p: a.__setitem__(a.index("--recipe") + 1, "nope"), "unknown recipe 'nope'"),
        (lambda a, p: a.extend(["--set", "phases.0.lr=fast"]), "lr: expected float, got 'fast'"),
        (
            lambda a, p: a.__setitem__(a.index("--model") + 1, str(p)),
            "no *.safetensors weights found",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(
    toy_files, tiny_model_dir, tmp_path, capsys, mutate, message
):
    args = _train_args(toy_files, tiny_model_dir, tmp_path / "run")
    mutate(args, tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_eval_label_unseen_in_training_fails_before_training(
    toy_files, tiny_model_dir, tmp_path, capsys
):
    bad = write_jsonl(tmp_path / "test.jsonl", [{"text": "so so", "label": "neutral"}])
    args = _train_args(toy_files, tiny_model_dir, tmp_path / "run")
    args[args.index("--eval") + 1] = str(bad)
    assert main(args) == 2
    assert "label(s) ['neutral'] never appear in training" in capsys.readouterr().err


def test_recipes_lists_ce(capsys):
    assert main(["recipes"]) == 0
    assert "ce" in capsys.readouterr().out
