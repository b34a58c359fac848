"""A frozen encoder is a fixed feature extractor: no dropout, and its pooled vectors are computed
once per phase when the objectives read nothing else."""

from __future__ import annotations

from dataclasses import replace

import torch
from conftest import TINY

from contrafit import ContrafitClassifier
from contrafit.objectives.cross_entropy import CrossEntropy

PROBE = [*TINY, "phases.0.freeze=[encoder]", "phases.*.epochs=6"]


def _probe(tiny_model_dir, toy_files, monkeypatch=None, calls=None, dev=False, extra=()):
    if calls is not None:  # record every encoder pass: was autograd on?
        from transformers import BertModel

        original = BertModel.forward

        def counted(self, *args, **kwargs):
            calls.append(torch.is_grad_enabled())
            return original(self, *args, **kwargs)

        monkeypatch.setattr(BertModel, "forward", counted)
    clf = ContrafitClassifier(
        model=tiny_model_dir,
        recipe="ce",
        precision="fp32",
        overrides=[*PROBE, *extra],
        progress=False,
    )
    return clf.fit(str(toy_files["train"]), dev=str(toy_files["dev"]) if dev else None)


def test_a_frozen_encoder_runs_once_per_phase_not_once_per_step(
    tiny_model_dir, toy_files, monkeypatch
):
    calls: list[bool] = []
    clf = _probe(tiny_model_dir, toy_files, monkeypatch, calls, dev=True)
    phase = clf.history_[0]
    assert phase["steps"] >= 6 and len(phase["dev_history"]) >= 2  # batch 8 (ce's), 6 epochs
    assert not any(calls)  # no encoder pass with autograd: every step reused the features
    # one pass over the training texts and one over dev for the phase (every epoch's dev
    # evaluation reuses it), one over the training texts for the kNN/proxy bank at the end
    assert len(calls) == 3


def test_cached_features_train_the_head_as_running_the_frozen_encoder_would(
    tiny_model_dir, toy_files, monkeypatch
):
    cached = _probe(tiny_model_dir, toy_files).model_.head.state_dict()
    # an objective that reads token embeddings turns the cache off: the encoder runs every step
    monkeypatch.setattr(CrossEntropy, "needs", replace(CrossEntropy.needs, tokens=True))
    calls: list[bool] = []
    recomputed = _probe(tiny_model_dir, toy_files, monkeypatch, calls).model_.head.state_dict()
    assert sum(calls) >= 6  # the per-step path really ran
    for k, v in cached.items():
        torch.testing.assert_close(recomputed[k], v, atol=1e-5, rtol=1e-4)


def test_frozen_dropout_runs_the_encoder_every_step_and_still_reuses_dev_vectors(
    tiny_model_dir, toy_files, monkeypatch
):
    calls: list[bool] = []
    extra = ["phases.0.frozen_dropout=true"]
    clf = _probe(tiny_model_dir, toy_files, monkeypatch, calls, dev=True, extra=extra)
    phase = clf.history_[0]
    assert len(phase["dev_history"]) >= 2
    # every step encodes its batch (dropout on); dev is encoded once for the phase; then the bank
    assert calls.count(True) == phase["steps"] and calls.count(False) == 2
    again = _probe(tiny_model_dir, toy_files, dev=True, extra=extra)  # dropout draws are seeded
    for k, v in clf.model_.head.state_dict().items():
        torch.testing.assert_close(again.model_.head.state_dict()[k], v)
    fixed = _probe(tiny_model_dir, toy_files, dev=True)  # no dropout noise: another head
    assert not torch.allclose(fixed.model_.head[1].weight, clf.model_.head[1].weight)
