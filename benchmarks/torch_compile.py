"""Does ``torch.compile`` pay off for a MiniLM training step here? (issue 7: "optional torch.compile
if it pays off"). Times one training step (bf16 autocast, eager attention, mean pooling, linear
head, AdamW) of the default model, eager vs compiled, at a few batch sizes, in one process.

    python benchmarks/torch_compile.py --output benchmarks/speed/torch-compile.md   # ~4 min
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch


def step_seconds(batch: int, seq_len: int, compiled: bool, steps: int = 15) -> tuple[float, float]:
    """(first step incl. compilation, median step) seconds for a fresh default model."""
    from contrafit.modeling.encoder import load_encoder, pool

    torch.manual_seed(0)
    encoder, _ = load_encoder("default")
    encoder.set_attn_implementation("eager")  # what contrafit trains with on a CPU
    encoder.train()
    head = torch.nn.Linear(encoder.config.hidden_size, 2)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=1e-5)
    ids = torch.randint(1000, 20000, (batch, seq_len))
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    labels = torch.randint(0, 2, (batch,))

    def embed(ids, mask):
        return pool(encoder(input_ids=ids, attention_mask=mask).last_hidden_state, mask, "mean")

    forward = torch.compile(embed) if compiled else embed

    def step() -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pooled = forward(ids, mask)
        torch.nn.functional.cross_entropy(head(pooled.float()), labels).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    first = step()
    for _ in range(3):  # warm-up
        step()
    return first, statistics.median(step() for _ in range(steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--batch-sizes", default="8,32")
    parser.add_argument("--seq-len", type=int, default=64)
    args = parser.parse_args()
    rows = []
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        eager_first, eager = step_seconds(batch, args.seq_len, compiled=False)
        compile_first, compiled = step_seconds(batch, args.seq_len, compiled=True)
        rows.append(
            f"| {batch} × {args.seq_len} | {1000 * eager:.0f} | {1000 * compiled:.0f} "
            f"| {eager / compiled:.2f} | {compile_first:.1f} |"
        )
        print(rows[-1], flush=True)
    lines = [
        "# torch.compile vs eager: one MiniLM training step",
        "",
        f"`python benchmarks/torch_compile.py --output ...` · torch {torch.__version__} · "
        f"{platform.processor() or platform.machine()} · {torch.get_num_threads()} threads",
        "",
        "| batch × tokens | eager ms | compiled ms | speed-up | first compiled step s |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]
    with open(args.output, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
