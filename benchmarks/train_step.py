"""One MiniLM training step, looked at closely (issue 7): where its time goes (torch profiler,
by kind of operator), what packed dropout masks save, and whether ``torch.compile`` pays off. The
step is what contrafit runs on a CPU: bf16 autocast, eager attention, mean pooling, a linear head,
fused AdamW, dropout masks torch's or packed (``contrafit.modeling.dropout``, the default).

    python benchmarks/train_step.py --output benchmarks/speed/train-step.md   # ~5 min
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import time
from collections import defaultdict
from collections.abc import Callable

import torch

# profiler operator names -> what they are; the rest is "other (element-wise, norms, softmax, ...)"
KINDS = {
    "aten::mm": "matmul",
    "aten::addmm": "matmul",
    "aten::bmm": "matmul",
    "aten::bernoulli_": "dropout masks (random numbers)",
    "aten::random_": "dropout masks (random numbers)",  # packed: randint's draws
    "aten::native_dropout_backward": "dropout (applying masks)",
    "aten::copy_": "dtype casts and copies (autocast)",
    "aten::_fused_adamw_": "optimizer",
    "aten::fill_": "fills (zeroing)",
}


_KEEP_OPEN = contextlib.ExitStack()


def make_step(
    batch: int, seq_len: int, dropout: str = "packed", compiled: bool = False
) -> Callable[[], None]:
    """A training step of a fresh default model on random token ids (no padding), word
    embeddings frozen as in the default recipe."""
    from contrafit.modeling.encoder import load_encoder, pool
    from contrafit.training.runtime import attention

    torch.manual_seed(0)
    encoder, _ = load_encoder("default")
    # the kernels a training phase runs with; this process only trains, so they stay on
    _KEEP_OPEN.enter_context(
        attention(encoder, "eager", torch.device("cpu"), training=True, dropout=dropout)
    )
    encoder.train()
    encoder.get_input_embeddings().requires_grad_(False)
    head = torch.nn.Linear(encoder.config.hidden_size, 2)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=1e-5, fused=True)
    ids = torch.randint(1000, 20000, (batch, seq_len))
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    labels = torch.randint(0, 2, (batch,))

    def embed(ids, mask):
        return pool(encoder(input_ids=ids, attention_mask=mask).last_hidden_state, mask, "mean")

    forward = torch.compile(embed) if compiled else embed

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pooled = forward(ids, mask)
        torch.nn.functional.cross_entropy(head(pooled.float()), labels).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def timed(step: Callable[[], None], steps: int = 15) -> tuple[float, float]:
    """(first step, median of ``steps`` after a warm-up) in seconds."""
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def profile_ms(batch: int, seq_len: int, dropout: str, steps: int = 5) -> dict[str, float]:
    """Milliseconds per step by kind of operator."""
    from torch.profiler import ProfilerActivity, profile

    step = make_step(batch, seq_len, dropout)
    for _ in range(3):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    by_kind: dict[str, float] = defaultdict(float)
    events = prof.key_averages()
    for event in events:
        if event.key.startswith("aten::"):
            by_kind[KINDS.get(event.key, "other (element-wise, norms, softmax, ...)")] += (
                event.self_cpu_time_total
            )
    total = sum(e.self_cpu_time_total for e in events)
    by_kind["outside aten operators (Python, autograd, dispatch)"] = total - sum(by_kind.values())
    return {kind: us / steps / 1000 for kind, us in by_kind.items()}


def profile_rows(batch: int, seq_len: int) -> list[str]:
    ms = {dropout: profile_ms(batch, seq_len, dropout) for dropout in ("torch", "packed")}
    totals = {dropout: sum(kinds.values()) for dropout, kinds in ms.items()}
    kinds = sorted(set(ms["torch"]) | set(ms["packed"]), key=lambda k: -ms["torch"].get(k, 0.0))
    rows = [
        f"| {kind} | {ms['torch'].get(kind, 0.0):.0f} | "
        f"{100 * ms['torch'].get(kind, 0.0) / totals['torch']:.0f} % | "
        f"{ms['packed'].get(kind, 0.0):.0f} | "
        f"{100 * ms['packed'].get(kind, 0.0) / totals['packed']:.0f} % |"
        for kind in kinds
    ]
    return [*rows, f"| total | {totals['torch']:.0f} | | {totals['packed']:.0f} | |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--batch-sizes", default="8,32", help="for the compile comparison")
    parser.add_argument("--profile-batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=64)
    args = parser.parse_args()
    lines = [
        "# One MiniLM training step: where the time goes, and torch.compile",
        "",
        f"`python benchmarks/train_step.py --output ...` · torch {torch.__version__} · "
        f"{platform.processor() or platform.machine()} · {torch.get_num_threads()} threads · "
        "bf16 autocast, eager attention, fused AdamW",
        "",
        f"## Time per step by operator kind, {args.profile_batch} × {args.seq_len} tokens "
        "(torch profiler, 5 steps), torch's dropout masks vs packed ones",
        "",
        "| kind | torch ms per step | share | packed ms per step | share |",
        "|---|---|---|---|---|",
        *profile_rows(args.profile_batch, args.seq_len),
        "",
        "## Step time: dropout masks, and torch.compile (packed masks)",
        "",
        "| batch × tokens | torch masks ms | packed ms | speed-up | compiled ms | speed-up "
        "| first compiled step s |",
        "|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        _, plain = timed(make_step(batch, args.seq_len, "torch"))
        _, packed = timed(make_step(batch, args.seq_len, "packed"))
        compile_first, compiled = timed(make_step(batch, args.seq_len, "packed", compiled=True))
        lines.append(
            f"| {batch} × {args.seq_len} | {1000 * plain:.0f} | {1000 * packed:.0f} "
            f"| {plain / packed:.2f} | {1000 * compiled:.0f} | {packed / compiled:.2f} "
            f"| {compile_first:.1f} |"
        )
        print(lines[-1], flush=True)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write("\n".join([*lines, ""]))
    _KEEP_OPEN.close()


if __name__ == "__main__":
    main()
