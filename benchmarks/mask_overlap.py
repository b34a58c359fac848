"""Can torch's own dropout masks be drawn on a background thread while the step computes? (issue 7)

Torch draws a CPU dropout mask one random number per element on one thread (on this AMD CPU; its
MKL path is for Intel). The masks are a function of the generator's stream alone, so drawing them
ahead, in the same order, on another thread would give the very same masks for less wall time, if
the drawing overlapped with the step's two-thread matmuls. This measures that bound: the step with
its masks, the step without any (dropout an identity: the best prefetching could do), and the
mask-free step while a background thread draws one step's worth of masks (24.4M elements at
32 x 64 tokens) per step.

    python benchmarks/mask_overlap.py          # ~2 min; OMP_WAIT_POLICY=PASSIVE to compare
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_step import make_step, timed  # noqa: E402

MASK_ELEMENTS = 24_400_000  # one 32 x 64-token MiniLM step's dropout masks, all layers


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with_masks = make_step(32, 64, "torch")
    print(f"step, torch's masks: {1000 * timed(with_masks)[1]:.0f} ms")

    no_masks = make_step(32, 64, "torch")
    torch.nn.functional.dropout = lambda x, p=0.5, training=True, inplace=False: x  # identity
    print(f"step, no masks: {1000 * timed(no_masks)[1]:.0f} ms")

    buffer = torch.empty(MASK_ELEMENTS, dtype=torch.bool)
    start = time.perf_counter()
    buffer.bernoulli_(0.9)
    print(f"one step's masks alone: {1000 * (time.perf_counter() - start):.0f} ms")

    generator = torch.Generator().manual_seed(0)
    go, stop = threading.Semaphore(0), threading.Event()

    def draw() -> None:
        while True:
            go.acquire()
            if stop.is_set():
                return
            buffer.bernoulli_(0.9, generator=generator)

    thread = threading.Thread(target=draw)
    thread.start()
    times = []
    for _ in range(12):
        go.release()  # the next step's masks, drawn while this step computes
        start = time.perf_counter()
        no_masks()
        times.append(time.perf_counter() - start)
    stop.set()
    go.release()
    thread.join()
    print(
        f"step, no masks, one step's masks drawn beside it: {1000 * statistics.median(times):.0f} ms"
    )


if __name__ == "__main__":
    main()
