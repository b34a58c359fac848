"""Data parallelism on CPU with 2 processes (gloo): for a fixed global batch, the averaged gradients
of every parameter (encoder, head, proxies) equal the single-process gradients on that batch."""

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from contrafit.config import ModelConfig, ObjectiveConfig
from contrafit.distributed import average_gradients, shard
from contrafit.modeling import TextClassifier, load_encoder
from contrafit.objectives import Step, TaskInfo, build_objective

TEXTS = [f"text {i} says {w} things" for i, w in enumerate("abcdefgh")]
LABELS = [0, 1, 2, 0, 1, 2, 0, 1]
SETUPS = {
    "scl": [ObjectiveConfig("cross_entropy", 0.1), ObjectiveConfig("supcon", 0.9)],
    "proxy_anchor": [ObjectiveConfig("cross_entropy", 0.4), ObjectiveConfig("proxy_anchor", 0.6)],
    "cosine_pairs": [ObjectiveConfig("cosine_pairs")],
    "triple_entropy": [ObjectiveConfig("soft_triple", params={"level": "token"})],
}


def _gradients(model_dir: str, setup: str, rows: list[int]) -> tuple[dict, float]:
    encoder, tokenizer = load_encoder(model_dir)
    torch.manual_seed(0)
    model = TextClassifier(encoder, ModelConfig(), num_classes=3)
    model.eval()  # no dropout: the two runs must see the same function
    task = TaskInfo(3, model.embedding_dim, (3, 3, 2), len(tokenizer), 0, tokenizer, encoder.config)
    objective = build_objective(SETUPS[setup], task)
    objective.bind(model)
    enc = tokenizer([TEXTS[i] for i in rows], padding=True, return_tensors="pt")
    batch = {**enc, "labels": torch.tensor([LABELS[i] for i in rows])}
    out = objective(Step(model, batch))
    out.loss.backward()
    params = [p for p in [*model.parameters(), *objective.parameters()] if p.requires_grad]
    average_gradients(params)
    named = {f"model.{n}": p for n, p in model.named_parameters()}
    named.update({f"objective.{n}": p for n, p in objective.named_parameters()})
    return {n: p.grad.clone() for n, p in named.items() if p.grad is not None}, out.loss.item()


def _worker(rank: int, world: int, init_file: str, model_dir: str, setup: str, out: str):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    grads, _ = _gradients(model_dir, setup, shard(list(range(len(TEXTS)))))
    if rank == 0:
        save_file({k: v.contiguous() for k, v in grads.items()}, out)
    dist.barrier()
    dist.destroy_process_group()


def test_two_processes_match_one_on_the_same_global_batch(tiny_model_dir, tmp_path):
    for setup in SETUPS:
        single, _ = _gradients(tiny_model_dir, setup, list(range(len(TEXTS))))
        out = tmp_path / f"{setup}.safetensors"
        init = tmp_path / f"{setup}.init"
        mp.spawn(_worker, args=(2, str(init), tiny_model_dir, setup, str(out)), nprocs=2)
        double = load_file(str(out))
        assert set(double) == set(single), setup
        worst = max((double[k] - single[k]).abs().max().item() for k in single)
        scale = max(single[k].abs().max().item() for k in single)
        assert worst <= 1e-5 * scale + 1e-7, f"{setup}: gradients differ by {worst} (scale {scale})"
        # the proxies (learned loss parameters) got the same update on both processes too
        if setup == "proxy_anchor":
            assert "objective.terms.proxy_anchor.loss.proxies" in double
