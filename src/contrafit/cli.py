"""Command line: parse -> validate -> call the Python API. Errors print one line and exit 2."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from contrafit.errors import ConfigError, ContrafitError

FINISHED_MARK = "metrics.json"


def _add_columns(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    p.add_argument("--text-pair-column", default="text_pair", help="second text of pair tasks")
    p.add_argument("--label-column", default="label", help="column holding the label")


def _columns(args) -> dict[str, str]:
    return {
        "text": args.text_column,
        "text_pair": args.text_pair_column,
        "label": args.label_column,
    }


def build_parser() -> argparse.ArgumentParser:
    from contrafit.bench.run import DEFAULT_PHASE_CACHE_BYTES

    parser = argparse.ArgumentParser(prog="contrafit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a classifier with a recipe")
    t.add_argument("--train", required=True, help="labeled training file (.jsonl/.csv/.tsv)")
    t.add_argument("--dev", help="labeled dev file: picks the best epoch (never the test set)")
    t.add_argument("--eval", help="labeled test file, read once after training")
    t.add_argument("--unlabeled", help="extra unlabeled text for post-training phases")
    t.add_argument("--model", help="HF model name or folder (default: offline all-MiniLM-L6-v2)")
    t.add_argument("--recipe", default="default", help="shipped recipe name or a .yaml path")
    t.add_argument("--output", required=True, help="run folder (model/, metrics.json, log.jsonl)")
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    t.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    t.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set phases.0.lr=3e-5 (repeatable)",
    )
    t.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    t.add_argument(
        "--keep-phases",
        action="store_true",
        help="also keep the model after each phase, in OUTPUT/phases/NN-name/",
    )
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the unfinished run in --output from its checkpoint (same settings)",
    )
    t.add_argument(
        "--phase-cache",
        metavar="DIR",
        help="keep the model after each phase in DIR; a run whose first phases match a cached "
        "run's (same model, data, seed and settings) starts after them",
    )
    t.add_argument(
        "--checkpoint-every",
        type=int,
        default=200,
        metavar="STEPS",
        help="checkpoint interval in optimizer steps (also saved between phases; 0: never)",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument(
        "--allow-empty-text",
        action="store_true",
        help="keep empty texts in --train/--dev (logged) instead of refusing the file",
    )
    _add_columns(t)

    p = sub.add_parser("predict", help="predict labels for a file")
    p.add_argument("--model", required=True, help="a saved model folder (RUN/model)")
    p.add_argument("--input", required=True, help=".jsonl/.csv/.tsv with a text column")
    p.add_argument("--output", required=True, help="JSONL: one {label, scores} per input line")
    p.add_argument("--device", default=None)
    p.add_argument(
        "--inference", choices=["head", "proxy", "knn", "logreg"], help="override the saved mode"
    )
    _add_columns(p)

    e = sub.add_parser("evaluate", help="metrics of a saved model on a labeled file")
    e.add_argument("--model", required=True)
    e.add_argument("--data", required=True)
    e.add_argument("--output", help="metrics JSON (default: print only)")
    e.add_argument("--device", default=None)
    e.add_argument(
        "--inference", choices=["head", "proxy", "knn", "logreg"], help="override the saved mode"
    )
    _add_columns(e)

    sub.add_parser("recipes", help="list the shipped recipes")

    b = sub.add_parser(
        "bench",
        help="run a few-shot grid (resumable) and write a report",
        description="Tasks × recipes × K × label noise × seeds; each cell trains once, in its own "
        "folder, and is never re-run. Settings come from --config and/or the flags (flags win).",
    )
    b.add_argument("--config", help="grid YAML, e.g. benchmarks/fewshot16.yaml")
    b.add_argument("--data-root", help="LM-BFF layout: ROOT/TASK/K-SEED/{train,dev,test}.jsonl")
    b.add_argument("--tasks", help="comma-separated, e.g. sst-2,mr,cr,trec")
    b.add_argument("--recipes", help="comma-separated recipe names, 'default', or peer 'setfit'")
    b.add_argument("--seeds", help="comma-separated (default 13,21,42,87,100)")
    b.add_argument("--shots", help="comma-separated K values (default 16)")
    b.add_argument("--label-noise", help="comma-separated flip fractions (default 0)")
    b.add_argument("--model", help="HF model name or folder (default: offline all-MiniLM-L6-v2)")
    b.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE")
    b.add_argument(
        "--dev-holdout",
        type=float,
        help="share of each dev split (e.g. 0.5) kept from training's epoch selection and only "
        "scored: an unbiased dev accuracy for choosing between recipes",
    )
    b.add_argument("--output", required=True, help="grid folder; re-running resumes it")
    b.add_argument(
        "--report-dir",
        help="write results.json, report.md and figures here instead of OUTPUT, e.g. a study "
        "whose cells live in a bigger grid's folder (default: OUTPUT)",
    )
    b.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: report the cells of the grid that have finished so far",
    )
    b.add_argument(
        "--no-phase-cache",
        action="store_true",
        help="compute every phase in every cell (by default, cells that share their first "
        "phases, e.g. dae-ft and dae-cl-ft, compute them once, in OUTPUT/phase-cache)",
    )
    b.add_argument(
        "--phase-cache-gb",
        type=float,
        default=DEFAULT_PHASE_CACHE_BYTES / 1e9,
        help="after each cell, delete the least recently used phase-cache entries down to this "
        "size (default %(default)s GB)",
    )
    return parser


def _prepare_run_dir(out: Path, overwrite: bool, resume: bool = False) -> None:
    from contrafit.training.checkpoint import CHECKPOINT_FILE

    if resume and overwrite:
        raise ContrafitError("--resume and --overwrite contradict each other; choose one")
    if resume:
        if (out / FINISHED_MARK).exists():
            raise ContrafitError(f"{out}: this run already finished; nothing to resume")
        if not (out / CHECKPOINT_FILE).exists():
            raise ContrafitError(
                f"{out}: no checkpoint to resume from ({CHECKPOINT_FILE} is missing); "
                "run without --resume to start over in a new --output folder"
            )
        return
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            state = (
                "a finished run"
                if (out / FINISHED_MARK).exists()
                else "an unfinished run or other files"
            )
            raise ContrafitError(
                f"{out}: already holds {state}; choose another --output or pass --overwrite"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def cmd_train(args) -> None:
    from contrafit.classifier import ContrafitClassifier, build_run_config
    from contrafit.data.loading import load_dataset
    from contrafit.distributed import barrier, init_from_environment, is_main_process
    from contrafit.evaluation.metrics import format_report
    from contrafit.io import append_jsonl, atomic_write_json
    from contrafit.training.checkpoint import Checkpointer

    cols = _columns(args)
    # read and validate every input before any work, so a bad file costs nothing
    lenient = args.allow_empty_text
    train = load_dataset(args.train, cols, allow_empty_text=lenient)
    dev = load_dataset(args.dev, cols, allow_empty_text=lenient) if args.dev else None
    # every eval/predict input gets an answer, so empty texts there are kept (and logged)
    test = load_dataset(args.eval, cols, allow_empty_text=True) if args.eval else None
    unlabeled = (
        load_dataset(args.unlabeled, cols, require_labels=False, allow_empty_text=lenient)
        if args.unlabeled
        else None
    )
    config = build_run_config(
        args.recipe, args.model, args.seed, args.device, args.precision, args.overrides
    )
    out = Path(args.output)
    init_from_environment()  # under `accelerate launch`: one process writes, all of them train
    main_process = is_main_process()
    if main_process:
        _prepare_run_dir(out, args.overwrite, args.resume)
        atomic_write_json(out / "config.json", config.to_dict())
    barrier()
    log_path = out / "log.jsonl"

    wall = time.perf_counter()
    clf = ContrafitClassifier(config=config, progress=not args.quiet)
    clf.fit(
        train,
        dev=dev,
        unlabeled=unlabeled,
        log=lambda r: append_jsonl(log_path, r),
        checkpoint_dir=out,
        checkpoint_every=args.checkpoint_every or None,
        resume=args.resume,
        phase_dir=out / "phases" if args.keep_phases else None,
        phase_cache=args.phase_cache,
    )
    if not main_process:
        return
    metrics = {
        "recipe": config.recipe.name,
        "seed": config.seed,
        "n_train": len(train),
        "train_seconds": clf.train_seconds_,
        "phases": [
            {k: p[k] for k in ("name", "steps", "seconds", "best_epoch", "best_dev", "reused")}
            for p in clf.history_
        ],
    }
    if test is not None:
        clf._fitted().encode(test.labels, test.source)  # unseen labels fail before predicting
        start = time.perf_counter()
        metrics["eval"] = clf.evaluate(test)
        metrics["predict_seconds"] = time.perf_counter() - start
    clf.save(out / "model", overwrite=True)
    metrics["wall_seconds"] = time.perf_counter() - wall
    atomic_write_json(out / FINISHED_MARK, metrics)  # written last: marks the run finished
    Checkpointer.remove_from(out)  # the saved model supersedes it

    added, kappa = clf.label_texts_added_, clf.label_name_agreement_
    earned = f"; the names' agreement, kappa {kappa:.2f}, earned them" if kappa is not None else ""
    print(
        f"recipe {config.recipe.name}, seed {config.seed}: trained on {len(train)} examples"
        + (f" (+{added} label texts{earned})" if added else "")
        + f" in {clf.train_seconds_:.1f} s"
    )
    if test is not None:
        print(f"eval on {args.eval} (predicted in {metrics['predict_seconds']:.1f} s):")
        print(format_report(metrics["eval"]))
    print(f"model saved to {out / 'model'}; metrics in {out / FINISHED_MARK}")


def cmd_predict(args) -> None:
    from contrafit.classifier import ContrafitClassifier
    from contrafit.data.loading import load_dataset
    from contrafit.io import atomic_write_text

    data = load_dataset(args.input, _columns(args), require_labels=False, allow_empty_text=True)
    clf = ContrafitClassifier.load(args.model, device=args.device)
    proba = clf.predict_proba(data, inference=args.inference)
    labels = clf.classes_
    lines = []
    for row in proba:
        best = int(row.argmax())
        scores = {lbl: float(p) for lbl, p in zip(labels, row, strict=True)}
        lines.append(json.dumps({"label": labels[best], "scores": scores}, ensure_ascii=False))
    atomic_write_text(args.output, "\n".join(lines) + "\n")
    print(f"wrote {len(lines)} predictions to {args.output}")


def cmd_evaluate(args) -> None:
    from contrafit.classifier import ContrafitClassifier
    from contrafit.data.loading import load_dataset
    from contrafit.evaluation.metrics import format_report
    from contrafit.io import atomic_write_json

    data = load_dataset(args.data, _columns(args), allow_empty_text=True)
    clf = ContrafitClassifier.load(args.model, device=args.device)
    metrics = clf.evaluate(data, inference=args.inference)
    print(format_report(metrics))
    if args.output:
        atomic_write_json(args.output, metrics)


def cmd_recipes(args) -> None:
    from contrafit.training.recipes import DEFAULT_RECIPE, list_recipes

    for name, description in list_recipes().items():
        mark = " (default)" if name == DEFAULT_RECIPE else ""
        print(f"{name:<20} {description}{mark}")


def _csv(value: str, cast=str) -> list:
    try:
        return [cast(v.strip()) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ContrafitError(
            f"cannot read {value!r} as a comma-separated list of {cast.__name__}"
        ) from None


def _grid_settings(args) -> dict:
    """The grid file's settings with the command line's flags on top."""
    from contrafit.bench.config import read_grid_file

    plain = read_grid_file(args.config) if args.config else {}
    flags = {
        "data_root": args.data_root,
        "recipes": _csv(args.recipes) if args.recipes else None,
        "seeds": _csv(args.seeds, int) if args.seeds else None,
        "shots": _csv(args.shots, int) if args.shots else None,
        "label_noise": _csv(args.label_noise, float) if args.label_noise else None,
        "model": args.model,
        "set": args.overrides,
        "dev_holdout": args.dev_holdout,
    }
    if flags["recipes"]:  # a name the file defines as a variant keeps the file's definition
        variants = {r["name"]: r for r in plain.get("recipes") or [] if isinstance(r, dict)}
        flags["recipes"] = [variants.get(name, name) for name in flags["recipes"]]
    plain.update({k: v for k, v in flags.items() if v is not None})
    if args.tasks:  # a subset of the file's tasks (keeping their options), or LM-BFF task names
        named = plain.get("tasks") or {}
        named = {t: {} for t in named} if isinstance(named, list) else named
        plain["tasks"] = {t: named.get(t, {}) for t in _csv(args.tasks)}
    return plain


def cmd_bench(args) -> None:
    from contrafit.bench import (
        build_grid,
        failed_cells,
        finished_results,
        plan,
        run_grid,
        write_report,
    )

    if args.phase_cache_gb < 0:
        raise ConfigError(
            f"--phase-cache-gb must be >= 0 (0 keeps only entries in use), got {args.phase_cache_gb}"
        )
    grid = build_grid(_grid_settings(args), args.config or "command line")
    cells = plan(grid)
    out = Path(args.output)
    start = time.perf_counter()
    if args.report_only:
        results = finished_results(out, cells)
    else:
        results = run_grid(
            cells,
            grid,
            out,
            share_phases=not args.no_phase_cache,
            phase_cache_bytes=int(args.phase_cache_gb * 1e9),
        )
    wall = time.perf_counter() - start
    failed = failed_cells(out, cells)
    report_dir = Path(args.report_dir) if args.report_dir else out
    report_dir.mkdir(parents=True, exist_ok=True)
    print(
        write_report(
            results,
            grid,
            report_dir,
            wall,
            source=args.config,
            planned=len(cells),
            cells_dir=out / "cells",
            failed=failed,
        )
    )
    if failed:
        raise ContrafitError(
            f"{len(failed)} cell(s) failed, e.g. {failed[0]}: see "
            f"{out / 'cells' / failed[0] / 'error.txt'}; the other cells are in the report"
        )


COMMANDS = {
    "bench": cmd_bench,
    "train": cmd_train,
    "predict": cmd_predict,
    "evaluate": cmd_evaluate,
    "recipes": cmd_recipes,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(format="contrafit: %(levelname)s: %(message)s", level=logging.WARNING)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the weight-loading bar is noise on every run
        COMMANDS[args.command](args)
    except ContrafitError as e:
        print(f"contrafit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"contrafit {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
