"""ema_decay: a moving average of a phase's weights, scored on dev and kept, that leaves the
training trajectory itself untouched."""

import numpy as np
import pytest
import torch
from conftest import TINY

from contrafit import ContrafitClassifier
from contrafit.classifier import build_run_config
from contrafit.errors import ConfigError
from contrafit.modeling import load_encoder
from contrafit.training.averaging import WeightAverage
from contrafit.training.phase_cache import phase_keys


def test_the_average_follows_the_ema_formula_and_swaps_in_and_out():
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    params = list(layer.parameters())
    optimizer = torch.optim.SGD(params, lr=0.5)
    average = WeightAverage(params, decay=0.8)
    expected = [p.detach().clone() for p in params]
    for _ in range(4):
        layer(torch.randn(5, 3)).pow(2).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        average.update()
        expected = [0.8 * e + 0.2 * p.detach() for e, p in zip(expected, params, strict=True)]
    live = [p.detach().clone() for p in params]
    with average.applied():
        for p, e in zip(params, expected, strict=True):
            torch.testing.assert_close(p.detach(), e)
    for p, v in zip(params, live, strict=True):
        assert torch.equal(p.detach(), v)  # the trained weights are back after the block
    assert not all(
        torch.equal(e, v) for e, v in zip(expected, live, strict=True)
    )  # the two really differ
    average.copy_to_model()
    for p, e in zip(params, expected, strict=True):
        torch.testing.assert_close(p.detach(), e)


def _fit(tiny_model_dir, toy_files, overrides=(), log=None):
    over = [*TINY, "phases.*.epochs=4", *overrides]
    clf = ContrafitClassifier(tiny_model_dir, "ce", seed=1, overrides=over, progress=False)
    return clf.fit(toy_files["train"], dev=toy_files["dev"], log=log)


def test_averaging_changes_what_is_scored_and_kept_not_how_training_goes(tiny_model_dir, toy_files):
    plain_log, slow_log = [], []
    plain = _fit(tiny_model_dir, toy_files, log=plain_log.append)
    # a decay of nearly 1: the average barely leaves the weights the phase started from
    slow = _fit(tiny_model_dir, toy_files, ["phases.*.ema_decay=0.999999"], log=slow_log.append)
    losses = [[r["loss"] for r in log if "loss" in r] for log in (plain_log, slow_log)]
    assert losses[0] == losses[1]  # scoring the average on dev leaves the trained weights alone
    assert np.mean(losses[0][-4:]) < 0.75 * np.mean(losses[0][:4])  # and they did train
    dev = [e["loss"] for e in slow.history_[0]["dev_history"]]
    np.testing.assert_allclose(dev, dev[0], rtol=1e-4)  # every epoch scores ~the start weights
    assert len({e["loss"] for e in plain.history_[0]["dev_history"]}) > 1
    start = load_encoder(tiny_model_dir)[0].state_dict()
    kept = slow.model_.encoder.state_dict()
    trained = plain.model_.encoder.state_dict()
    moved = 0
    for k, v in start.items():
        if v.is_floating_point():
            torch.testing.assert_close(kept[k].cpu(), v, atol=1e-4, rtol=0)
            moved += not torch.allclose(trained[k].cpu(), v, atol=1e-4, rtol=0)
    assert moved > 10


def test_without_dev_selection_the_phase_ends_on_the_average(tiny_model_dir, toy_files):
    clf = _fit(
        tiny_model_dir, toy_files, ["phases.*.ema_decay=0.999999", "phases.*.select_best=false"]
    )
    start = load_encoder(tiny_model_dir)[0].state_dict()
    for k, v in clf.model_.encoder.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v.cpu(), start[k], atol=1e-4, rtol=0)


def test_ema_decay_outside_0_1_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"ema_decay must be in \(0, 1\)"):
        build_run_config("ce", "default", overrides=["phases.*.ema_decay=1.0"])


def test_only_the_averaged_phase_and_those_after_it_get_new_cache_keys():
    plain = build_run_config("pairs-lp-scl", "default")
    averaged = build_run_config(
        "pairs-lp-scl", "default", overrides=["phases.finetune.ema_decay=0.9"]
    )
    a, b = phase_keys(plain, "default", "data"), phase_keys(averaged, "default", "data")
    assert a[:2] == b[:2]  # pairs and probe: the same phases, reused from the cache
    assert a[2] != b[2]
