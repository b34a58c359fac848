"""Speed on this machine, in one run: matmul peak, training throughput and MFU per objective,
inference throughput, and one LM-BFF 16-shot task end to end for our default recipe and SetFit.
The default recipe (packed dropout masks) also runs with torch's masks (``dropout=torch``) beside it.

    python benchmarks/speed.py --output benchmarks/speed            # ~10 min on 2 cores
    python benchmarks/speed.py --output runs/speed --scaling        # + time vs train size (long)
    python benchmarks/speed.py --output runs/speed --repeats 3      # end to end 3 times, interleaved

Writes OUTPUT/results.json and OUTPUT/report.md. Every end-to-end run is a child process, so its
peak memory (max RSS) is its own. Model FLOPs follow the PaLM convention (training: 6·N + 12·L·d·T
per token, N = non-embedding parameters, T = sequence length; inference: a third of that); MFU is
achieved model FLOP/s over the measured bf16 matmul peak.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import resource
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch

# a binary LM-BFF 16-shot split with 2,000 test texts (issue 7's end-to-end workload)
TASK = Path("../shared/data/lmbff_kshot/mr/16-42")


def _best_flops(products: list[tuple[torch.Tensor, torch.Tensor]], seconds: float) -> float:
    """Best sustained FLOP/s over repeated passes of the matrix products ``a @ b``."""
    flops = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b in products)
    for a, b in products:  # warm-up
        a @ b
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        for a, b in products:
            a @ b
        best = max(best, flops / (time.perf_counter() - start))
    return best


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 3.0) -> float:
    """Best sustained FLOP/s of an n×n matmul in ``dtype`` (fp32 or bf16) on this CPU/GPU."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return _best_flops([(a, b)] * 5, seconds)


@dataclass(frozen=True)
class ModelSize:
    non_embedding_params: int
    layers: int
    hidden: int
    ffn: int

    @classmethod
    def of(cls, model_path: str) -> ModelSize:
        from contrafit.modeling.encoder import load_encoder

        encoder, _ = load_encoder(model_path)
        n_embed = sum(p.numel() for n, p in encoder.named_parameters() if "embeddings" in n)
        cfg = encoder.config
        n = sum(p.numel() for p in encoder.parameters()) - n_embed
        return cls(n, cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size)

    def flops_per_token(self, seq_len: int, training: bool) -> float:
        train = 6 * self.non_embedding_params + 12 * self.layers * self.hidden * seq_len
        return train if training else train / 3

    def shape_peak(self, tokens: int, seconds: float = 2.0) -> float:
        """bf16 FLOP/s of the encoder's own matmuls (Q, K, V, output, the two feed-forward
        products) at ``tokens`` rows: the ceiling its shapes allow, below the square peak."""
        h, f = self.hidden, self.ffn
        shapes = [(tokens, h, h)] * 4 + [(tokens, h, f), (tokens, f, h)]
        return _best_flops(
            [
                (torch.randn(m, k, dtype=torch.bfloat16), torch.randn(k, n, dtype=torch.bfloat16))
                for m, k, n in shapes
            ],
            seconds,
        )


def _workload(n_examples: int, words: int, seed: int = 0):
    """n labelled texts of ``words`` random words of the task's test texts, classes in turn."""
    import random

    from contrafit.data.loading import TextDataset, load_dataset

    pool = load_dataset(TASK / "test.jsonl", allow_empty_text=True)
    vocab = " ".join(pool.texts).split()
    rng = random.Random(seed)
    texts = [" ".join(rng.choices(vocab, k=words)) for _ in range(n_examples)]
    classes = sorted(set(pool.labels))
    return TextDataset(texts, [classes[i % len(classes)] for i in range(n_examples)])


def train_throughput(
    recipe: str,
    n_examples: int,
    seq_len: int,
    flops_token: float,
    peak: float,
    batch_size: int | None = None,
    extra: tuple[str, ...] = (),
):
    """One epoch of every phase of ``recipe`` on the fixed workload; examples/s, tokens/s, MFU
    over the phases that train the encoder (a frozen-encoder phase, e.g. the default's linear
    probe, trains only the head: no encoder backward, so its seconds are reported apart).
    (CMLM encodes two views of each text: its FLOPs, counted once per text, are a lower bound.)"""
    from contrafit import ContrafitClassifier

    data = _workload(n_examples, words=seq_len)  # ~1.3 tokens per word: truncated to seq_len
    overrides = [
        f"model.max_length={seq_len}",
        "phases.*.epochs=1",
        "phases.*.max_steps=1000000",
        "phases.*.select_best=false",
    ]
    if batch_size is not None:
        overrides.append(f"phases.*.batch_size={batch_size}")
    clf = ContrafitClassifier(recipe=recipe, overrides=[*overrides, *extra], progress=False)
    clf.fit(data)
    hist, frozen_seconds = [], 0.0
    for phase, done in zip(clf.config.recipe.phases, clf.history_, strict=True):
        if "encoder" in phase.freeze:
            frozen_seconds += done["seconds"]
        else:
            hist.append(done)
    steps, seconds = sum(p["steps"] for p in hist), sum(p["seconds"] for p in hist)
    n_seen = n_examples * len(hist)  # each phase ran one epoch over the workload
    tokens = n_seen * seq_len
    return {
        "recipe": " ".join([recipe, *extra]),
        "batch_size": batch_size or clf.config.recipe.phases[-1].batch_size,
        "frozen_encoder_seconds": frozen_seconds,
        "steps": steps,
        "seconds": seconds,
        "examples_per_s": n_seen / seconds,
        "tokens_per_s": tokens / seconds,
        "model_tflops": tokens * flops_token / seconds / 1e12,
        "mfu_bf16": tokens * flops_token / seconds / peak,
    }


def setfit_train_throughput(seq_len: int, steps: int = 40) -> float:
    """Texts per second through SetFit's body training (its defaults: fp32, batches of 16 pairs,
    so 32 texts a step), truncated to ``seq_len`` tokens like ours, for ``steps`` steps."""
    from contrafit.bench.peers import setfit_trainer

    out = Path("/tmp/contrafit-speed-setfit")
    trainer, model, _ = setfit_trainer(_workload(32, words=seq_len), 42, None, out, max_steps=steps)
    model.model_body.max_seq_length = seq_len
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    return steps * 2 * trainer.args.embedding_batch_size / seconds


def inference_throughput(n_examples: int, seq_len: int, flops_token: float, peak: float):
    from contrafit import ContrafitClassifier

    data = _workload(64, words=8)
    clf = ContrafitClassifier(overrides=["phases.*.epochs=1"], progress=False).fit(data)
    texts = _workload(n_examples, words=seq_len).texts
    clf.config.recipe.model.max_length = seq_len
    clf.predict(texts[:64])  # warm-up
    start = time.perf_counter()
    clf.predict(texts)
    seconds = time.perf_counter() - start
    tokens = n_examples * seq_len
    return {
        "examples_per_s": n_examples / seconds,
        "tokens_per_s": tokens / seconds,
        "mfu_bf16": tokens * flops_token / seconds / peak,
    }


# the default trains with packed dropout masks (contrafit.modeling.dropout); torch's beside them
TORCH_MASKS = ("dropout=torch",)


def _end_to_end(
    who: str, train_file: str, per_class: int | None, queue, extra: tuple[str, ...] = ()
) -> None:
    """Child process: train + predict the test split; reports time, accuracy, peak RSS. The wall
    clock starts before any import: a user waits for those too."""
    start = time.perf_counter()
    from contrafit.bench.peers import run_setfit
    from contrafit.bench.tasks import Splits
    from contrafit.classifier import ContrafitClassifier
    from contrafit.data.loading import load_dataset
    from contrafit.data.sampling import sample_k_per_class

    train = load_dataset(train_file, allow_empty_text=True)
    if per_class is not None:
        train = sample_k_per_class(train, per_class, seed=0)
    dev = load_dataset(TASK / "dev.jsonl")
    test = load_dataset(TASK / "test.jsonl", allow_empty_text=True)
    if who == "setfit":  # SetFit selects nothing on dev: it gets none, so it predicts nothing extra
        out = run_setfit(Splits(train, None, test), 42, None, Path("/tmp/contrafit-speed"))
        accuracy = out["metrics"]["accuracy"]
        train_s, predict_s = out["train_seconds"], out["predict_seconds"]
    else:
        clf = ContrafitClassifier(recipe="default", seed=42, overrides=extra, progress=False)
        clf.fit(train, dev=dev)
        train_s = clf.train_seconds_
        t0 = time.perf_counter()
        accuracy = clf.evaluate(test)["accuracy"]
        predict_s = time.perf_counter() - t0
    queue.put(
        {
            "who": " ".join([who, *extra]),
            "n_train": len(train),
            "accuracy": accuracy,
            "train_seconds": train_s,
            "predict_seconds": predict_s,
            "wall_seconds": time.perf_counter() - start,
            "peak_rss_mb": _peak_rss_mb(),
        }
    )


def _peak_rss_mb() -> float:
    """This process's peak resident memory. (getrusage's ru_maxrss survives exec: a spawned child
    would report its parent's peak; VmHWM belongs to the child's own address space.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def end_to_end(
    who: str, train_file: str = str(TASK / "train.jsonl"), per_class=None, extra=()
) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_end_to_end, args=(who, train_file, per_class, queue, extra))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def report(r: dict) -> str:
    lines = [
        "# Speed on this machine",
        "",
        f"{r['machine']}; torch {r['torch']}, {r['threads']} threads. Measured by "
        "`python benchmarks/speed.py`; nothing else ran meanwhile.",
        "",
        "## Matmul peak (2048², best of repeated runs)",
        "",
        f"fp32 {r['peak_fp32'] / 1e12:.2f} TFLOP/s, bf16 {r['peak_bf16'] / 1e12:.2f} TFLOP/s. "
        f"bf16 at the encoder's own matmul shapes for one training batch ({r['batch_tokens']} "
        f"tokens: Q, K, V, output and the two feed-forward products): "
        f"{r['peak_model_shapes'] / 1e12:.2f} TFLOP/s, the practical ceiling of MFU "
        f"{100 * r['peak_model_shapes'] / r['peak_bf16']:.0f} %.",
        "",
        f"## Training throughput, default model, {r['n_examples']} examples × {r['seq_len']} "
        "tokens, one epoch",
        "",
        "Phases that train the encoder; a frozen-encoder phase (the default's linear probe, which"
        " keeps the encoder's dropout and so runs it forward at every step) trains the head alone,"
        " with no encoder backward: its seconds are in the last column.",
        "",
        "| recipe | steps | s | examples/s | tokens/s | model TFLOP/s | MFU (bf16 peak) "
        "| frozen-encoder phase s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in r["training"]:
        lines.append(
            f"| {t['recipe']} | {t['steps']} | {t['seconds']:.1f} | {t['examples_per_s']:.1f} "
            f"| {t['tokens_per_s']:.0f} | {t['model_tflops']:.3f} | {100 * t['mfu_bf16']:.1f} % "
            f"| {t.get('frozen_encoder_seconds', 0.0):.2f} |"
        )
    if r.get("batch_scaling"):
        lines += [
            "",
            f"## Training MFU vs batch size (recipe `default`, {r['n_examples']} examples × "
            f"{r['seq_len']} tokens)",
            "",
            "The recipes train on batches of 8 (few-shot data); larger batches show what the",
            "hardware gives the same model when per-operator overhead is spread over more tokens.",
            "",
            "| recipe | batch | steps | s | examples/s | MFU (bf16 peak) |",
            "|---|---|---|---|---|---|",
        ]
        for t in r["batch_scaling"]:
            lines.append(
                f"| {t['recipe']} | {t['batch_size']} | {t['steps']} | {t['seconds']:.1f} "
                f"| {t['examples_per_s']:.1f} | {100 * t['mfu_bf16']:.1f} % |"
            )
    lines += [
        "",
        f"## Training throughput vs sequence length (recipe `default`, {r['n_examples']} examples)",
        "",
        "SetFit: texts per second through its body training with its defaults (fp32, 16 pairs a "
        "step), the same texts truncated to the same length (its time per run is this times the "
        "number of pair texts, which grows with the square of the data).",
        "",
        "| tokens | examples/s | tokens/s | MFU (bf16 peak) | SetFit texts/s | ours / SetFit |",
        "|---|---|---|---|---|---|",
    ]
    for t in r["seq_len_scaling"]:
        peer = t.get("setfit_examples_per_s")
        vs = f"{peer:.1f} | {t['examples_per_s'] / peer:.2f}×" if peer else "– | –"
        lines.append(
            f"| {t['seq_len']} | {t['examples_per_s']:.1f} | {t['tokens_per_s']:.0f} "
            f"| {100 * t['mfu_bf16']:.1f} % | {vs} |"
        )
    inf = r["inference"]
    lines += [
        "",
        f"## Inference: {inf['examples_per_s']:.0f} examples/s, {inf['tokens_per_s']:.0f} tokens/s, "
        f"MFU {100 * inf['mfu_bf16']:.1f} %",
        "",
        f"## End to end: {TASK.parent.name} 16-shot (split {TASK.name}), train + predict the test set, "
        "same backbone; wall = process start (imports included) to last prediction",
        "",
        "| who | repeat | train s | predict s | wall s | accuracy | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in r["end_to_end"]:
        lines.append(
            f"| {e['who']} | {e.get('repeat', 0)} | {e['train_seconds']:.1f} "
            f"| {e['predict_seconds']:.1f} | {e['wall_seconds']:.1f} | {100 * e['accuracy']:.1f} "
            f"| {e['peak_rss_mb']:.0f} |"
        )
    lines += ["", *time_ratios(r["end_to_end"])]
    if r.get("scaling"):
        lines += [
            "",
            "## Train time vs examples per class",
            "",
            "| per class | ours s | SetFit s |",
        ]
        lines.append("|---|---|---|")
        for row in r["scaling"]:
            peer = "not run" if row["setfit"] is None else f"{row['setfit']:.1f}"
            lines.append(f"| {row['per_class']} | {row['ours']:.1f} | {peer} |")
    return "\n".join(lines) + "\n"


def time_ratios(runs: list[dict]) -> list[str]:
    """Ours / SetFit per repeat (runs of one repeat ran back to back) and over the medians."""
    by_who: dict[str, dict[int, dict]] = defaultdict(dict)
    for e in runs:
        by_who[e["who"]][e.get("repeat", 0)] = e
    peer = by_who.pop("setfit")
    lines = []
    for who, mine in by_who.items():
        repeats = sorted(set(mine) & set(peer))
        wall = [mine[i]["wall_seconds"] / peer[i]["wall_seconds"] for i in repeats]
        busy = [
            (mine[i]["train_seconds"] + mine[i]["predict_seconds"])
            / (peer[i]["train_seconds"] + peer[i]["predict_seconds"])
            for i in repeats
        ]
        median_wall = statistics.median(mine[i]["wall_seconds"] for i in repeats) / (
            statistics.median(peer[i]["wall_seconds"] for i in repeats)
        )
        lines.append(
            f"Time ratio {who} / SetFit: wall {median_wall:.3f} (ratio of the medians over "
            f"{len(repeats)} repeats; per repeat {', '.join(f'{x:.2f}' for x in wall)}), "
            f"train + predict per repeat {', '.join(f'{x:.2f}' for x in busy)}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--n-examples", type=int, default=512)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--recipes", default="default,ce,scl,proxy-anchor,cmlm-ce")
    parser.add_argument("--seq-lens", default="32,64,128,256", help="train throughput vs length")
    parser.add_argument("--batch-sizes", default="8,32,128", help="train MFU vs batch size")
    parser.add_argument("--scaling", action="store_true", help="train time vs examples per class")
    parser.add_argument("--scaling-k", default="16,64,256,1024")
    parser.add_argument("--setfit-max-k", type=int, default=1024, help="largest K run for SetFit")
    parser.add_argument("--repeats", type=int, default=1, help="end-to-end runs of each")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")

    from contrafit.io import atomic_write_json, atomic_write_text
    from contrafit.modeling.encoder import resolve_model_path

    out = Path(args.output)
    model = resolve_model_path("default")
    r = {
        "machine": f"{platform.processor() or platform.machine()}",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "n_examples": args.n_examples,
        "seq_len": args.seq_len,
        "peak_fp32": matmul_peak(torch.float32),
        "peak_bf16": matmul_peak(torch.bfloat16),
        "batch_tokens": 8 * args.seq_len,  # the few-shot recipes' batch of 8
    }
    size = ModelSize.of(model)  # loaded once: every FLOP count below derives from it
    r["peak_model_shapes"] = size.shape_peak(r["batch_tokens"])
    train_flops = size.flops_per_token(args.seq_len, training=True)
    # the first training in a process pays one-off costs (kernel selection, allocator growth):
    # a short untimed one, so the first recipe measured is not penalised
    train_throughput("ce", 64, args.seq_len, train_flops, r["peak_bf16"])
    r["training"] = [
        train_throughput(rec, args.n_examples, args.seq_len, train_flops, r["peak_bf16"], None, x)
        for rec, x in [*((rec, ()) for rec in args.recipes.split(",")), ("default", TORCH_MASKS)]
    ]
    r["seq_len_scaling"] = [
        train_throughput(
            "default", args.n_examples, n, size.flops_per_token(n, True), r["peak_bf16"]
        )
        | {"seq_len": n, "setfit_examples_per_s": setfit_train_throughput(n)}
        for n in map(int, args.seq_lens.split(","))
    ]
    r["batch_scaling"] = [
        train_throughput(
            "default", args.n_examples, args.seq_len, train_flops, r["peak_bf16"], b, x
        )
        for x in ((), TORCH_MASKS)
        for b in map(int, args.batch_sizes.split(","))
    ]
    r["inference"] = inference_throughput(
        2000, args.seq_len, size.flops_per_token(args.seq_len, False), r["peak_bf16"]
    )
    # interleaved repeats: a slow spell of the machine lands on both sides, not on one
    r["end_to_end"] = [
        end_to_end(who, extra=extra) | {"repeat": i}
        for i in range(args.repeats)
        for who, extra in (("ours", ()), ("ours", TORCH_MASKS), ("setfit", ()))
    ]
    if args.scaling:
        full = "../shared/data/mr/train.jsonl"  # the same task as TASK, K per class drawn from it
        r["scaling"] = [
            {
                "per_class": k,
                "ours": end_to_end("ours", full, k)["train_seconds"],
                # SetFit trains on pairs of texts: their number grows with the square of the data
                "setfit": end_to_end("setfit", full, k)["train_seconds"]
                if k <= args.setfit_max_k
                else None,
            }
            for k in map(int, args.scaling_k.split(","))
        ]
    atomic_write_json(out / "results.json", r)
    text = report(r)
    atomic_write_text(out / "report.md", text)
    print(text)


if __name__ == "__main__":
    main()
