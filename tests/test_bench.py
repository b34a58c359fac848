import json
from types import SimpleNamespace

import pytest
import torch
from conftest import TINY, toy_rows, write_jsonl

import contrafit
from contrafit.bench import TaskSource, build_grid, plan, read_grid_file, summarize
from contrafit.bench.compare import paired
from contrafit.cli import main
from contrafit.data import TextDataset
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
    # diffs 0.1, 0, 0.2, -0.1: mean 0.05, sd 0.1291, t(0.975, 3) = 3.1824
    half = 3.1824 * 0.1291 / 2
    assert row["ci95"] == pytest.approx((0.05 - half, 0.05 + half), abs=1e-4)
    # the interval holds 0 exactly when the t-test's p is above 0.05
    assert (row["ci95"][0] < 0 < row["ci95"][1]) == (row["t_p"] > 0.05)


def test_summary_mean_std_worst_seed():
    (row,) = summarize(_cells("ce", [0.5, 0.6, 0.7, 0.8]))
    assert row["accuracy_mean"] == pytest.approx(0.65) and row["worst_seed"] == 1
    assert row["accuracy_std"] == pytest.approx(0.1291, abs=1e-4)


def test_a_grid_over_several_k_reports_each_task_at_each_k():
    from contrafit.bench import markdown

    cells = _cells("ce", [0.5, 0.6, 0.7, 0.8]) + [
        {**c, "shots": 8} for c in _cells("ce", [0.1, 0.2, 0.3, 0.4])
    ]
    report = markdown(summarize(cells), "t")
    assert "| recipe | t K=8 | t K=16 | mean |" in report
    assert "| ce | **25.0 ± 12.9** | **65.0 ± 12.9** | 45.0 |" in report
    assert "| t K=8 | ce |" in report and "| t K=16 | ce |" in report
    # one K beside a task sampled by fraction (no K): a single-K grid, columns are tasks
    mixed = _cells("ce", [0.5, 0.6, 0.7, 0.8]) + [
        {**c, "task": "u", "shots": None} for c in _cells("ce", [0.1, 0.2, 0.3, 0.4])
    ]
    assert "| recipe | t | u | mean |" in markdown(summarize(mixed), "t")


def _lmbff(root, task="a", seeds=(1,), splits=("train", "dev", "test")):
    for seed in seeds:
        folder = root / task / f"16-{seed}"
        folder.mkdir(parents=True)
        for split in splits:
            write_jsonl(folder / f"{split}.jsonl", toy_rows(4, seed=seed))


def test_bad_grid_fails_before_training_with_every_problem(tmp_path):
    _lmbff(tmp_path, splits=("train", "dev"))
    grid = build_grid(
        {"data_root": str(tmp_path), "tasks": ["a", "b"], "recipes": ["ce", "nope"], "seeds": [1]}
    )
    with pytest.raises(ConfigError) as e:
        plan(grid)
    msg = str(e.value)
    assert "unknown task 'b'" in msg and "unknown recipe 'nope'" in msg
    assert "missing file" in msg and "test.jsonl" in msg


def test_plan_is_the_full_product(tmp_path):
    _lmbff(tmp_path, seeds=(1, 2))
    grid = build_grid(
        {
            "data_root": str(tmp_path),
            "tasks": ["a"],
            "recipes": ["ce", "scl"],
            "seeds": [1, 2],
            "label_noise": [0.0, 0.2],
        }
    )
    cells = plan(grid)
    assert len(cells) == 8 and len({c.key for c in cells}) == 8


def test_grid_file_errors_name_the_file_and_the_key(tmp_path):
    bad = tmp_path / "grid.yaml"
    bad.write_text("tasks: [a]\nrecipe: [ce]\n")
    with pytest.raises(ConfigError, match=r"grid.yaml: unknown key\(s\) \['recipe'\]"):
        read_grid_file(bad)
    with pytest.raises(ConfigError, match=r"task 'e': unknown option\(s\) \['frac'\]"):
        build_grid({"tasks": {"e": {"train": "x.jsonl", "frac": 0.1}}})
    with pytest.raises(ConfigError, match="no train file and no data_root"):
        build_grid({"tasks": ["a"]})


def _full_task(tmp_path, **options):
    rows = toy_rows(30, seed=1)[:45]  # imbalanced: drop 15 rows at random
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    test = write_jsonl(tmp_path / "test.jsonl", toy_rows(5, seed=2))
    return TaskSource("toy", train=train, test=test, **options)


def test_dev_fraction_draws_its_own_share_of_the_dev_pool(tmp_path):
    dev = write_jsonl(tmp_path / "dev.jsonl", toy_rows(20, seed=4))
    splits = _full_task(tmp_path, fraction=0.2, dev=dev, dev_fraction=0.5).load(None, seed=0)
    assert (len(splits.train), len(splits.dev)) == (9, 20)  # 20 % of 45, half of the 40 dev rows
    assert len(_full_task(tmp_path, fraction=0.2, dev=dev).load(None, seed=0).dev) == 8
    problems = _full_task(tmp_path, dev_fraction=1.5).problems([16], [1])
    assert problems == ["task 'toy': dev_fraction must be in (0, 1], got 1.5"]
    with pytest.raises(ConfigError, match="dev_fraction must be a number"):
        build_grid({"tasks": {"e": {"train": "x.jsonl", "dev_fraction": "half"}}})
    with pytest.raises(ConfigError, match="dev_metric must be one of"):
        build_grid({"tasks": {"e": {"train": "x.jsonl"}}, "dev_metric": "f1"})


def test_sampled_task_draws_k_per_class_and_a_disjoint_dev_per_seed(tmp_path):
    source = _full_task(tmp_path)
    splits = source.load(shots=4, seed=7)
    assert sorted(splits.train.labels) == ["neg"] * 4 + ["pos"] * 4
    assert len(splits.dev) == 8 and not set(splits.dev.texts) & set(splits.train.texts)
    assert splits.train.texts == source.load(shots=4, seed=7).train.texts
    assert splits.train.texts != source.load(shots=4, seed=8).train.texts
    assert len(splits.test) == 10


def test_holdout_per_class_draws_scored_texts_beside_the_dev_split(tmp_path):
    unlabeled = write_jsonl(tmp_path / "unlabeled.jsonl", toy_rows(30, seed=1))
    source = _full_task(tmp_path, holdout_per_class=5, unlabeled=unlabeled)
    splits = source.load(shots=4, seed=7)
    assert sorted(splits.dev_holdout.labels) == ["neg"] * 5 + ["pos"] * 5
    held = set(splits.dev_holdout.texts)
    assert not held & set(splits.train.texts) and not held & set(splits.dev.texts)
    assert len(splits.dev) == 8 and splits.scoring_dev is splits.dev_holdout
    assert not held & set(splits.unlabeled.texts)  # post-training never reads scored texts
    assert splits.dev_holdout.texts == source.load(shots=4, seed=7).dev_holdout.texts
    assert splits.dev_holdout.texts != source.load(shots=4, seed=8).dev_holdout.texts
    # the train and dev draws are those of the same task without it
    plain = _full_task(tmp_path).load(shots=4, seed=7)
    assert (splits.train.texts, splits.dev.texts) == (plain.train.texts, plain.dev.texts)
    assert _full_task(tmp_path, holdout_per_class=0).problems([4], [1]) == [
        "task 'toy': holdout_per_class must be a positive whole number, got 0"
    ]
    task = {"train": "x.jsonl", "holdout_per_class": 100}
    with pytest.raises(ConfigError, match="dev_holdout and the holdout_per_class of task"):
        build_grid({"tasks": {"e": task}, "dev_holdout": 0.5})
    with pytest.raises(ConfigError, match="holdout_per_class must be a whole number"):
        build_grid({"tasks": {"e": {**task, "holdout_per_class": 0.5}}})
    with pytest.raises(ConfigError, match="apply to a task with its own train file"):
        build_grid({"tasks": {"a": {"holdout_per_class": 10}}, "data_root": str(tmp_path)})


def test_fraction_keeps_the_class_proportions(tmp_path):
    source = _full_task(tmp_path, fraction=0.2)
    full = source.load(shots=None, seed=0)
    counts = {c: full.train.labels.count(c) for c in ("neg", "pos")}
    lines = (tmp_path / "train.jsonl").read_text().splitlines()
    whole = [json.loads(line)["label"] for line in lines]
    assert counts == {c: round(0.2 * whole.count(c)) for c in ("neg", "pos")}
    assert 0 < counts["neg"] != counts["pos"] > 0


def test_unlabeled_text_never_holds_dev_or_test_texts(tmp_path):
    source = _full_task(tmp_path)
    test_rows = toy_rows(5, seed=2)
    extra = [
        {"text": "  " + test_rows[0]["text"].upper() + " "},
        {"text": "new text"},
        {"text": ""},
    ]
    unl = write_jsonl(tmp_path / "unl.jsonl", extra)
    splits = TaskSource("toy", train=source.train, test=source.test, unlabeled=unl).load(4, 0)
    assert splits.unlabeled.texts == ["new text"] and splits.unlabeled_dropped == 2


def test_bench_cli_runs_resumes_and_reports(tmp_path, tiny_model_dir, capsys):
    _lmbff(tmp_path / "data", seeds=(1, 2, 3))
    out = tmp_path / "grid"
    argv = ["bench", "--data-root", str(tmp_path / "data"), "--tasks", "a", "--recipes", "ce"]
    argv += ["--seeds", "1,2", "--model", tiny_model_dir, "--output", str(out)]
    argv += [x for o in TINY for x in ("--set", o)]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results["cells"]) == 2
    for cell in results["cells"]:
        for key in ("task", "recipe", "seed", "shots", "noise", "accuracy", "macro_f1", "mcc"):
            assert key in cell
        assert cell["train_seconds"] > 0 and cell["predict_seconds"] > 0
        assert 0.0 <= cell["dev_accuracy"] <= 1.0
        assert cell["code"]["contrafit"] == contrafit.__version__  # which code made the cell
    done = sorted(out.glob("cells/**/result.json"))
    stamps = [p.stat().st_mtime_ns for p in done]
    assert main(argv) == 0  # every cell is finished: nothing is trained again
    assert [p.stat().st_mtime_ns for p in done] == stamps
    report = (out / "report.md").read_text()
    assert "| ce |" in report and "## Dev accuracy" in report
    hours = sum(c["train_seconds"] + c["predict_seconds"] for c in results["cells"]) / 3600
    assert f"train + predict time adds up to {hours:.1f} h" in report
    bigger = [*argv, "--seeds", "1,2,3", "--report-only"]
    assert main(bigger) == 0  # reports the 2 finished cells of 3 and trains nothing
    assert [p.stat().st_mtime_ns for p in done] == stamps
    assert not (out / "cells" / "a" / "ce" / "k16-noise0-seed3").exists()
    assert "2 of 3 cells" in (out / "report.md").read_text()
    assert main(argv) == 0  # the grid's own command restores its full report
    elsewhere = tmp_path / "study"  # a report of the same cells, written to its own folder
    assert main([*argv, "--report-dir", str(elsewhere)]) == 0
    assert [p.stat().st_mtime_ns for p in done] == stamps
    study = json.loads((elsewhere / "results.json").read_text())
    assert study["cells"] == results["cells"] and (elsewhere / "report.md").exists()


def test_a_cell_another_live_bench_process_claimed_is_left_to_it(tmp_path, tiny_model_dir):
    import socket
    import subprocess

    _lmbff(tmp_path / "data", seeds=(1, 2))
    out = tmp_path / "grid"
    argv = ["bench", "--data-root", str(tmp_path / "data"), "--tasks", "a", "--recipes", "ce"]
    argv += ["--seeds", "1,2", "--model", tiny_model_dir, "--output", str(out)]
    argv += [x for o in TINY for x in ("--set", o)]
    claimed = out / "cells" / "a" / "ce" / "k16-noise0-seed1"
    claimed.mkdir(parents=True)
    other = subprocess.Popen(["sleep", "60"])  # stands in for a second bench process
    try:
        (claimed / "running.claim").write_text(f"{socket.gethostname()} {other.pid}")
        assert main(argv) == 0
        results = json.loads((out / "results.json").read_text())
        assert [c["seed"] for c in results["cells"]] == [2] and results["planned_cells"] == 2
        assert not (claimed / "result.json").exists() and (claimed / "running.claim").exists()
        assert "1 of 2 cells" in (out / "report.md").read_text()
    finally:
        other.kill()
        other.wait()
    assert main(argv) == 0  # its process is gone: the stale claim is taken over and the cell run
    results = json.loads((out / "results.json").read_text())
    assert [c["seed"] for c in results["cells"]] == [1, 2]
    assert not list(out.glob("cells/**/running.claim"))


def test_a_failing_cell_is_recorded_and_the_grid_goes_on(tmp_path, tiny_model_dir, monkeypatch):
    import contrafit.bench.run as bench_run

    _lmbff(tmp_path / "data", seeds=(1, 2))
    out = tmp_path / "grid"
    argv = ["bench", "--data-root", str(tmp_path / "data"), "--tasks", "a", "--recipes", "ce"]
    argv += ["--seeds", "1,2", "--model", tiny_model_dir, "--output", str(out)]
    argv += [x for o in TINY for x in ("--set", o)]
    run_cell = bench_run.run_cell

    def seed_1_fails(cell, *args, **kwargs):
        if cell.seed == 1:
            raise IndexError("index is out of bounds")
        return run_cell(cell, *args, **kwargs)

    monkeypatch.setattr(bench_run, "run_cell", seed_1_fails)
    assert main(argv) == 2  # after the other cells ran and the report was written
    failed = out / "cells" / "a" / "ce" / "k16-noise0-seed1"
    assert "IndexError: index is out of bounds" in (failed / "error.txt").read_text()
    results = json.loads((out / "results.json").read_text())
    assert [c["seed"] for c in results["cells"]] == [2]
    assert "1 cell(s) failed" in (out / "report.md").read_text()
    monkeypatch.setattr(bench_run, "run_cell", run_cell)
    assert main(argv) == 0  # the next run retries the failed cell
    assert not (failed / "error.txt").exists() and (failed / "result.json").exists()


def test_setfit_peer_runs_in_the_same_harness(tmp_path, tiny_model_dir):
    pytest.importorskip("setfit")
    from contrafit.bench.run import run_cell

    _lmbff(tmp_path / "data")
    grid = build_grid(
        {"data_root": str(tmp_path / "data"), "tasks": ["a"], "recipes": ["setfit"], "seeds": [1]}
    )
    grid.model = tiny_model_dir
    (cell,) = plan(grid)
    result = run_cell(cell, grid, tmp_path / "cell")
    assert result["recipe"] == "setfit" and 0.0 <= result["accuracy"] <= 1.0
    assert result["train_seconds"] > 0 and result["n_test"] == 8
    assert 0.0 <= result["dev_accuracy"] <= 1.0


def test_plots_are_drawn_only_when_the_grid_varies_that_axis(tmp_path):
    from contrafit.bench.plots import accuracy_vs_noise, accuracy_vs_shots, embedding_projection

    results = []
    for recipe in ("ce", "scl"):
        for shots in (8, 16):
            for noise in (0.0, 0.2):
                for seed in (1, 2):
                    acc = 0.5 + shots / 100 - noise / 2 + seed / 100
                    results.append(
                        {
                            "task": "t",
                            "recipe": recipe,
                            "shots": shots,
                            "noise": noise,
                            "seed": seed,
                            "accuracy": acc,
                        }  # fmt: skip
                    )
    assert accuracy_vs_shots(results, tmp_path / "k.png").stat().st_size > 5000
    assert accuracy_vs_noise(results, tmp_path / "n.png").stat().st_size > 5000
    one_k = [r for r in results if r["shots"] == 8]
    assert accuracy_vs_shots(one_k, tmp_path / "k1.png") is None

    from safetensors.torch import save_file

    rng = torch.Generator().manual_seed(0)
    for recipe in ("ce", "scl"):
        folder = tmp_path / "cells" / "t" / recipe / "k16-noise0-seed1"
        folder.mkdir(parents=True)
        save_file(
            {"embeddings": torch.randn(40, 8, generator=rng), "labels": torch.arange(40) % 2},
            str(folder / "test_embeddings.safetensors"),
            metadata={"classes": json.dumps(["neg", "pos"])},
        )
    assert embedding_projection(tmp_path / "cells", tmp_path / "e.png").stat().st_size > 5000


def test_recipe_variants_carry_their_overrides_and_are_validated(tmp_path):
    _lmbff(tmp_path)
    plain = {
        "data_root": str(tmp_path),
        "tasks": ["a"],
        "recipes": ["ce", {"name": "ce-mlp", "recipe": "ce", "set": ["model.head=mlp"]}],
        "seeds": [1],
        "set": ["phases.*.epochs=2"],
    }
    grid = build_grid(plain)
    assert [c.recipe for c in plan(grid)] == ["ce", "ce-mlp"]
    assert grid.recipe_and_overrides("ce-mlp") == ("ce", ["phases.*.epochs=2", "model.head=mlp"])
    plain["recipes"] = [{"name": "bad", "recipe": "ce", "set": ["model.head=nope"]}]
    with pytest.raises(ConfigError, match="recipe 'bad'"):
        plan(build_grid(plain))


def test_recipes_flag_selects_the_grid_files_variants_by_name(tmp_path):
    import argparse

    from contrafit.cli import _grid_settings

    _lmbff(tmp_path)
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(
        f"data_root: {tmp_path}\ntasks: [a]\nseeds: [1]\n"
        "recipes: [ce, {name: ce-mlp, recipe: ce, set: [model.head=mlp]}]\n"
    )
    args = argparse.Namespace(
        config=str(grid_file),
        data_root=None,
        recipes="ce-mlp,scl",
        seeds=None,
        shots=None,
        label_noise=None,
        model=None,
        overrides=None,
        tasks=None,
        dev_holdout=None,
    )
    grid = build_grid(_grid_settings(args))
    assert [c.recipe for c in plan(grid)] == ["ce-mlp", "scl"]
    assert grid.recipe_and_overrides("ce-mlp") == ("ce", ["model.head=mlp"])


def test_setfit_on_a_pair_task_fails_before_training(tmp_path):
    pytest.importorskip("setfit")
    _lmbff(tmp_path, task="single")
    folder = tmp_path / "pairs" / "16-1"
    folder.mkdir(parents=True)
    rows = [{**r, "text_pair": "and another"} for r in toy_rows(4, seed=1)]
    for split in ("train", "dev", "test"):
        write_jsonl(folder / f"{split}.jsonl", rows)
    grid = {"data_root": str(tmp_path), "recipes": ["ce", "setfit"], "seeds": [1]}
    with pytest.raises(ConfigError, match="'setfit' takes single texts; pairs hold text pairs"):
        plan(build_grid({**grid, "tasks": ["single", "pairs"]}))
    assert len(plan(build_grid({**grid, "tasks": ["single"]}))) == 2


def test_report_says_which_code_ran_the_cells():
    from contrafit.bench.report import code_provenance

    cells = _cells("ce", [0.5, 0.6, 0.7, 0.8])
    cells[0]["code"] = {"contrafit": "0.1.0", "commit": "a" * 40, "uncommitted_changes": False}
    cells[1]["code"] = {"contrafit": "0.1.0", "commit": "a" * 40, "uncommitted_changes": True}
    cells[2]["code"] = {"restored_from": "old/results.json at commit bbb"}
    assert code_provenance(cells) == {
        "commit aaaaaaaaaa": 1,
        "commit aaaaaaaaaa with uncommitted changes": 1,
        "restored from old/results.json at commit bbb": 1,
        "not recorded": 1,
    }


def test_dev_holdout_moves_a_stratified_seeded_part_of_dev_out_of_training(tmp_path):
    source = _full_task(tmp_path)
    splits = source.load(shots=4, seed=7)
    held = splits.hold_out_dev(0.5, seed=7)
    assert sorted(held.dev_holdout.labels) == ["neg"] * 2 + ["pos"] * 2
    assert sorted(held.dev.labels) == ["neg"] * 2 + ["pos"] * 2
    assert sorted(held.dev.texts + held.dev_holdout.texts) == sorted(splits.dev.texts)
    assert held.scoring_dev is held.dev_holdout and splits.scoring_dev is splits.dev
    assert held.dev_holdout.texts == splits.hold_out_dev(0.5, seed=7).dev_holdout.texts
    assert held.dev_holdout.texts != splits.hold_out_dev(0.5, seed=8).dev_holdout.texts
    with pytest.raises(ConfigError, match="dev_holdout must be a number in"):
        build_grid({"tasks": ["a"], "data_root": str(tmp_path), "dev_holdout": 1.5})


def test_with_dev_holdout_training_selects_on_one_part_and_dev_accuracy_scores_the_other(
    tmp_path, tiny_model_dir, monkeypatch
):
    from contrafit.classifier import ContrafitClassifier

    _lmbff(tmp_path / "data", seeds=(1,))
    seen = {}
    fit, evaluate = ContrafitClassifier.fit, ContrafitClassifier.evaluate_modes

    def spy_fit(self, train, dev=None, **kwargs):
        seen["selected_on"] = list(dev.texts)
        return fit(self, train, dev=dev, **kwargs)

    def spy_evaluate(self, data):
        seen["scored"] = list(data.texts)
        result = evaluate(self, data)
        seen["accuracy"] = result[self.config.inference.mode]["accuracy"]
        return result

    monkeypatch.setattr(ContrafitClassifier, "fit", spy_fit)
    monkeypatch.setattr(ContrafitClassifier, "evaluate_modes", spy_evaluate)
    out = tmp_path / "grid"
    argv = ["bench", "--data-root", str(tmp_path / "data"), "--tasks", "a", "--recipes", "ce"]
    argv += ["--seeds", "1", "--model", tiny_model_dir, "--output", str(out)]
    argv += ["--dev-holdout", "0.5", *[x for o in TINY for x in ("--set", o)]]
    assert main(argv) == 0
    dev = [json.loads(line)["text"] for line in (tmp_path / "data/a/16-1/dev.jsonl").open()]
    assert len(seen["selected_on"]) == len(seen["scored"]) == 4
    assert sorted(seen["selected_on"] + seen["scored"]) == sorted(dev)
    (cell,) = json.loads((out / "results.json").read_text())["cells"]
    assert cell["dev_accuracy"] == seen["accuracy"]
    assert (cell["n_dev"], cell["n_dev_holdout"]) == (4, 4)
    assert "Scored on each dev split's held-out part" in (out / "report.md").read_text()


def test_dev_table_compares_each_recipe_with_the_default_on_dev():
    from contrafit.bench.report import dev_markdown

    cells = [
        {**c, "dev_accuracy": a}
        for c, a in zip(
            _cells("default", [0.5, 0.6, 0.7, 0.8]) + _cells("new", [0, 0, 0, 0]),
            [0.5, 0.6, 0.7, 0.8, 0.6, 0.6, 0.5, 0.9],
            strict=True,
        )
    ]
    table = "\n".join(dev_markdown(cells))
    assert "| new | 4 | +0.0 | -22.5 to +22.5 | 2/1/1 |" in table
    # a grid that ranks by dev macro-F1 (dev_metric) scores that instead
    by_f1 = [{**c, "dev_macro_f1": 1.0 - c["dev_accuracy"]} for c in cells]
    table = "\n".join(dev_markdown(by_f1, "macro_f1"))
    assert "## Dev macro-F1 (%)" in table and "| new | 4 | +0.0 | -22.5 to +22.5 | 1/1/2 |" in table
    # a search's incumbent may be another recipe than `default` (the grid's dev_baseline)
    table = "\n".join(dev_markdown(cells, baseline="new"))
    assert "Paired against `new`" in table
    assert "| default | 4 | +0.0 | -22.5 to +22.5 | 1/1/2 |" in table


def test_dev_baseline_is_read_from_the_grid_and_must_be_a_name():
    from contrafit.bench.config import build_grid

    base = {"data_root": "data", "tasks": ["a"]}
    grid = build_grid({**base, "recipes": ["default", "new"], "dev_baseline": "new"})
    assert grid.dev_baseline == "new"
    assert build_grid(base).dev_baseline == "default"
    with pytest.raises(ConfigError, match="dev_baseline must be a recipe name"):
        build_grid({**base, "dev_baseline": ["new"]})


def test_a_negative_phase_cache_size_is_a_clear_error(tmp_path, capsys):
    argv = ["bench", "--tasks", "a", "--output", str(tmp_path / "out"), "--phase-cache-gb", "-1"]
    assert main(argv) == 2
    assert "--phase-cache-gb must be >= 0" in capsys.readouterr().err


def test_setfit_label_texts_peer_trains_on_the_templated_texts_too(tmp_path, monkeypatch):
    pytest.importorskip("setfit")
    from contrafit.bench import peers

    seen = {}

    def fake_trainer(train, seed, model, out):
        seen["texts"] = list(train.texts)
        raise RuntimeError("stop before training")

    monkeypatch.setattr(peers, "setfit_trainer", fake_trainer)
    splits = SimpleNamespace(
        train=TextDataset(["good", "bad"], ["positive", "negative"]), test=None
    )
    for name, extra in (("setfit", []), ("setfit-label-texts", ["This sentence is positive"] * 2)):
        with pytest.raises(RuntimeError, match="stop before training"):
            peers.PEERS[name][1](splits, 1, None, tmp_path)
        assert seen["texts"][:2] == ["good", "bad"] and seen["texts"][2:4] == extra
