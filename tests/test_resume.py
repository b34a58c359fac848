"""Checkpoint and resume: an interrupted run, resumed, ends exactly where an uninterrupted one does."""

import numpy as np
import pytest
from conftest import TINY

from contrafit import ContrafitClassifier
from contrafit.errors import ContrafitError
from contrafit.training.checkpoint import CHECKPOINT_FILE

FAST = [*TINY, "phases.*.epochs=3", "phases.*.max_steps=9", "phases.*.batch_size=8"]


class Killed(Exception):
    pass


def _kill_at(phase: str, step: int):
    def log(record):
        if record.get("phase") == phase and record.get("step") == step and "loss" in record:
            raise Killed

    return log


@pytest.mark.parametrize(
    "recipe, phase, step, extra",
    [
        (
            "ce",
            "finetune",
            8,
            [],
        ),  # mid-phase, mid-epoch, after a dev evaluation chose a best epoch
        ("cmlm-ce", "cmlm", 5, []),  # inside a post-training phase with its own masking generator
        ("cmlm-ce", "finetune", 4, []),  # in the second phase: the first is not run again
        ("proxy-anchor", "finetune", 7, []),  # learned proxies and their optimizer state
        ("ce", "finetune", 8, ["phases.*.ema_decay=0.7"]),  # the moving average of the weights
    ],
)
def test_killed_and_resumed_run_matches_the_uninterrupted_one(
    recipe, phase, step, extra, tiny_model_dir, toy_files, tmp_path
):
    def classifier():
        return ContrafitClassifier(
            tiny_model_dir, recipe, overrides=[*FAST, *extra], progress=False
        )

    whole = classifier().fit(toy_files["train"], dev=toy_files["dev"])
    expected = whole.predict_proba(toy_files["test"])

    with pytest.raises(Killed):
        classifier().fit(
            toy_files["train"],
            dev=toy_files["dev"],
            checkpoint_dir=tmp_path,
            checkpoint_every=3,
            log=_kill_at(phase, step),
        )
    assert (tmp_path / CHECKPOINT_FILE).exists()
    started = []
    resumed = classifier().fit(
        toy_files["train"],
        dev=toy_files["dev"],
        checkpoint_dir=tmp_path,
        checkpoint_every=3,
        resume=True,
        log=lambda r: started.append((r.get("phase"), r.get("step"))),
    )
    np.testing.assert_allclose(resumed.predict_proba(toy_files["test"]), expected, atol=1e-6)
    assert [p["steps"] for p in resumed.history_] == [p["steps"] for p in whole.history_]
    assert [p["best_epoch"] for p in resumed.history_] == [p["best_epoch"] for p in whole.history_]
    first_step = next(s for p, s in started if p == phase and s is not None)
    assert first_step > 1, "the resumed run started the phase again from its first step"


def test_resume_refuses_a_checkpoint_of_another_configuration(tiny_model_dir, toy_files, tmp_path):
    with pytest.raises(Killed):
        ContrafitClassifier(tiny_model_dir, "ce", overrides=FAST, progress=False).fit(
            toy_files["train"],
            checkpoint_dir=tmp_path,
            checkpoint_every=2,
            log=_kill_at("finetune", 5),
        )
    other = ContrafitClassifier(tiny_model_dir, "ce", seed=7, overrides=FAST, progress=False)
    with pytest.raises(ContrafitError, match="another configuration"):
        other.fit(toy_files["train"], checkpoint_dir=tmp_path, resume=True)


def test_cli_kill_9_mid_phase_then_resume_gives_the_same_metrics(
    tiny_model_dir, toy_files, tmp_path
):
    """The real thing: SIGKILL a `contrafit train` process once it has checkpointed, resume it."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    def argv(out, *extra):
        args = [sys.executable, "-m", "contrafit.cli", "train", "--train", str(toy_files["train"])]
        args += ["--dev", str(toy_files["dev"]), "--eval", str(toy_files["test"])]
        args += ["--model", tiny_model_dir, "--output", str(out), "--quiet", *extra]
        for o in [*TINY, "phases.*.epochs=40", "phases.*.batch_size=4"]:
            args += ["--set", o]
        return args

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(argv(tmp_path / "whole"), check=True, env=env, capture_output=True)
    out = tmp_path / "killed"
    proc = subprocess.Popen(argv(out, "--checkpoint-every", "20"), env=env)
    deadline = time.time() + 120
    while not (out / CHECKPOINT_FILE).exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (out / "metrics.json").exists()
    subprocess.run(argv(out, "--resume"), check=True, env=env, capture_output=True)
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed["eval"] == whole["eval"]
    assert [p["best_epoch"] for p in resumed["phases"]] == [
        p["best_epoch"] for p in whole["phases"]
    ]
    assert not (out / CHECKPOINT_FILE).exists()  # removed once the model is saved


def test_cli_resume_without_a_checkpoint_is_a_clear_error(tmp_path, capsys):
    from contrafit.cli import main

    (tmp_path / "run").mkdir()
    argv = ["train", "--train", str(tmp_path / "t.jsonl"), "--output", str(tmp_path / "run")]
    (tmp_path / "t.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n')
    assert main([*argv, "--resume"]) == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err
    assert main([*argv, "--resume", "--overwrite"]) == 2
    assert "contradict" in capsys.readouterr().err
