"""Phase cache: a run that starts after a cached phase ends exactly where computing it would."""

import json

import numpy as np
from conftest import TINY, toy_rows, write_jsonl

from contrafit import ContrafitClassifier
from contrafit.cli import main

FAST = [*TINY, "phases.*.epochs=2", "phases.*.max_steps=6", "phases.*.batch_size=8"]


def _fit(model_dir, recipe, files, cache=None, seed=42, log=None, extra=()):
    clf = ContrafitClassifier(
        model_dir, recipe, seed=seed, overrides=[*FAST, *extra], progress=False
    )
    return clf.fit(
        files["train"],
        dev=files["dev"],
        unlabeled=files["train"],
        phase_cache=cache,
        log=log,
    )


def test_a_recipe_sharing_the_first_phase_starts_after_it_with_the_same_result(
    tiny_model_dir, toy_files, tmp_path
):
    cache = tmp_path / "cache"
    _fit(tiny_model_dir, "cmlm-ce", toy_files, cache)  # computes and caches the cmlm phase
    assert len(list(cache.iterdir())) == 1  # the last phase is the result, not an entry

    phases_run = []
    reusing = _fit(
        tiny_model_dir,
        "cmlm-scl",
        toy_files,
        cache,
        log=lambda r: phases_run.append(r.get("phase")),
    )
    computing = _fit(tiny_model_dir, "cmlm-scl", toy_files)

    assert "cmlm" not in phases_run, "the cached phase was computed again"
    assert [p["reused"] for p in reusing.history_] == [True, False]
    assert reusing.history_[0]["steps"] == computing.history_[0]["steps"]
    np.testing.assert_allclose(
        reusing.predict_proba(toy_files["test"]),
        computing.predict_proba(toy_files["test"]),
        atol=1e-6,
    )


def test_another_seed_data_or_phase_setting_is_a_miss(tiny_model_dir, toy_files, tmp_path):
    cache = tmp_path / "cache"
    _fit(tiny_model_dir, "cmlm-ce", toy_files, cache)
    other_train = write_jsonl(tmp_path / "other.jsonl", toy_rows(8, seed=99))
    misses = [
        _fit(tiny_model_dir, "cmlm-ce", toy_files, cache, seed=7),
        _fit(tiny_model_dir, "cmlm-ce", {**toy_files, "train": other_train}, cache),
        _fit(tiny_model_dir, "cmlm-ce", toy_files, cache, extra=["phases.cmlm.lr=1e-4"]),
    ]
    for clf in misses:
        assert not clf.history_[0]["reused"]
    assert len(list(cache.iterdir())) == 4  # one entry per distinct first phase


def test_bench_cells_share_a_phase_and_count_its_time(tmp_path, tiny_model_dir, toy_files):
    root = tmp_path / "data" / "toy" / "16-13"
    root.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        (root / f"{split}.jsonl").write_text(toy_files[split].read_text())
    out = tmp_path / "grid"
    args = ["bench", "--data-root", str(tmp_path / "data"), "--tasks", "toy", "--seeds", "13"]
    args += ["--recipes", "dae-ft,dae-cl-ft", "--model", tiny_model_dir, "--output", str(out)]
    for item in FAST:
        args += ["--set", item]
    assert main(args) == 0
    cells = {c["recipe"]: c for c in json.loads((out / "results.json").read_text())["cells"]}
    assert cells["dae-ft"]["reused_phase_seconds"] == 0
    shared = cells["dae-cl-ft"]
    assert shared["reused_phase_seconds"] == shared["phase_seconds"]["dae"] > 0
    assert shared["train_seconds"] > shared["reused_phase_seconds"]


def test_train_cli_phase_cache_flag(toy_files, tiny_model_dir, tmp_path):
    def train(recipe, out):
        args = ["train", "--train", str(toy_files["train"]), "--dev", str(toy_files["dev"])]
        args += ["--model", tiny_model_dir, "--recipe", recipe, "--output", str(out), "--quiet"]
        args += ["--phase-cache", str(tmp_path / "cache")]
        for item in FAST:
            args += ["--set", item]
        assert main(args) == 0
        return json.loads((out / "metrics.json").read_text())["phases"]

    assert [p["reused"] for p in train("cmlm-ce", tmp_path / "a")] == [False, False]
    assert [p["reused"] for p in train("cmlm-scl", tmp_path / "b")] == [True, False]


def test_eviction_drops_least_recently_used_entries_and_spares_fresh_ones(tmp_path):
    import os
    import time

    from contrafit.training.phase_cache import PhaseCache

    cache = PhaseCache(tmp_path)
    now = time.time()
    for i, age in enumerate([3000, 2000, 1000, 10]):  # seconds since last use; 1,000 bytes each
        entry = tmp_path / f"key{i}"
        entry.mkdir()
        (entry / "checkpoint.safetensors").write_bytes(b"x" * 1000)
        os.utime(entry, (now - age, now - age))
    assert cache.evict(max_bytes=2500) == 2000  # the two oldest go
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key2", "key3"]
    # key3 was used 10 s ago (another process may be writing it): kept even over the limit
    assert cache.evict(max_bytes=0) == 1000
    assert [p.name for p in tmp_path.iterdir()] == ["key3"]
    assert PhaseCache(tmp_path / "missing").evict(0) == 0


def test_a_cache_hit_marks_the_entry_as_used(tiny_model_dir, toy_files, tmp_path):
    import os

    from contrafit.training.phase_cache import PhaseCache

    cache = tmp_path / "cache"
    _fit(tiny_model_dir, "dae-ft", toy_files, cache)
    (entry,) = [p for p in cache.iterdir() if p.is_dir()]
    os.utime(entry, (0, 0))
    _fit(tiny_model_dir, "dae-cl-ft", toy_files, cache)  # starts after the shared DAE phase
    assert entry.stat().st_mtime > 1e9
    assert PhaseCache(cache).latest([entry.name, "next"]) is not None


def test_settings_added_later_leave_old_keys_alone_until_they_are_set(monkeypatch):
    """Settings added after entries were cached (``_ADDED_LATER``) stay out of the key at their
    default, so entries cached before they existed are still found; set, they change the key of
    their phase (and of the phases after it) only."""
    from contrafit.classifier import build_run_config
    from contrafit.training.phase_cache import _ADDED_LATER, phase_keys

    plain = build_run_config("scl-self-train", "default")
    phases = plain.to_dict()["recipe"]["phases"]
    assert all(phases[-1][name] == default for name, default in _ADDED_LATER.items())
    keys = phase_keys(plain, "default", "data")
    # keyed like any other setting, the new ones would miss every entry cached before them
    from contrafit.training import phase_cache

    monkeypatch.setattr(phase_cache, "_ADDED_LATER", {"ema_decay": None})
    assert phase_keys(plain, "default", "data")[1] != keys[1]
    monkeypatch.undo()
    for override in (
        "phases.self_train.pseudo_pick=confident",
        "phases.self_train.pseudo_teacher=inference",
    ):
        changed = phase_keys(
            build_run_config("scl-self-train", overrides=[override]), "default", "data"
        )
        assert changed[0] == keys[0] and changed[1] != keys[1]
