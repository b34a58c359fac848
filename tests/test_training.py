import json

import numpy as np
import pytest
import torch
from conftest import TINY, toy_rows, write_jsonl

from contrafit import ContrafitClassifier, load_dataset
from contrafit.errors import ContrafitError, ModelLoadError
from contrafit.modeling import load_encoder


def _fit(tiny_model_dir, toy_files, seed=0, overrides=(), log=None):
    clf = ContrafitClassifier(
        tiny_model_dir, "ce", seed=seed, overrides=[*TINY, *overrides], progress=False
    )
    return clf.fit(toy_files["train"], dev=toy_files["dev"], log=log)


def test_ce_lowers_the_loss_and_learns_a_separable_task(tiny_model_dir, toy_files):
    records = []
    clf = _fit(tiny_model_dir, toy_files, log=records.append)
    losses = [r["loss"] for r in records if "loss" in r]
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])
    metrics = clf.evaluate(toy_files["test"])
    assert metrics["accuracy"] >= 0.9, metrics
    assert set(metrics) >= {"accuracy", "macro_f1", "mcc", "per_class", "confusion_matrix"}
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) == 40


def test_same_seed_same_metrics_different_seed_differs(tiny_model_dir, toy_files):
    a = _fit(tiny_model_dir, toy_files, seed=3, overrides=["phases.*.epochs=2"])
    b = _fit(tiny_model_dir, toy_files, seed=3, overrides=["phases.*.epochs=2"])
    c = _fit(tiny_model_dir, toy_files, seed=4, overrides=["phases.*.epochs=2"])
    pa, pb, pc = (m.predict_proba(toy_files["test"]) for m in (a, b, c))
    np.testing.assert_array_equal(pa, pb)
    assert not np.array_equal(pa, pc)
    assert a.history_[0]["dev_history"] == b.history_[0]["dev_history"]


def test_save_load_gives_identical_predictions(tiny_model_dir, toy_files, tmp_path):
    clf = _fit(tiny_model_dir, toy_files, overrides=["phases.*.epochs=2"])
    clf.save(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").exists() and (
        tmp_path / "m" / "head.safetensors"
    ).exists()
    loaded = ContrafitClassifier.load(tmp_path / "m")
    texts = load_dataset(toy_files["test"]).texts
    np.testing.assert_array_equal(clf.predict_proba(texts), loaded.predict_proba(texts))
    assert loaded.predict(texts) == clf.predict(texts) and loaded.classes_ == ["neg", "pos"]
    emb = loaded.encode(texts[:3])
    assert emb.shape == (3, 32) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    with pytest.raises(ContrafitError, match="already holds files"):
        clf.save(tmp_path / "m")


def test_load_refuses_incomplete_or_pickled_folders(tiny_model_dir, toy_files, tmp_path):
    clf = _fit(tiny_model_dir, toy_files, overrides=["phases.*.max_steps=1"])
    clf.save(tmp_path / "m")
    (tmp_path / "m" / "head.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="missing head.safetensors"):
        ContrafitClassifier.load(tmp_path / "m")
    clf.save(tmp_path / "p")
    (tmp_path / "p" / "model.safetensors").rename(tmp_path / "p" / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pickled weights are not loaded"):
        ContrafitClassifier.load(tmp_path / "p")
    (tmp_path / "c").mkdir()
    with pytest.raises(ModelLoadError, match="no contrafit.json"):
        ContrafitClassifier.load(tmp_path / "c")


def test_fit_from_python_lists_and_best_epoch_uses_dev(tiny_model_dir):
    rows = toy_rows(12, seed=5)
    dev = toy_rows(6, seed=6)
    from contrafit.data import TextDataset

    clf = ContrafitClassifier(tiny_model_dir, "ce", seed=1, overrides=TINY, progress=False)
    clf.fit(
        [r["text"] for r in rows],
        [r["label"] for r in rows],
        dev=TextDataset([r["text"] for r in dev], [r["label"] for r in dev]),
    )
    history = clf.history_[0]
    assert len(history["dev_history"]) == 12
    best = max(history["dev_history"], key=lambda h: (h["accuracy"], -h["loss"]))
    assert history["best_epoch"] == best["epoch"]
    # the kept weights are the best epoch's: re-scoring dev reproduces its accuracy
    again = clf.evaluate(TextDataset([r["text"] for r in dev], [r["label"] for r in dev]))
    assert again["accuracy"] == pytest.approx(best["accuracy"])


def test_frozen_encoder_is_not_updated(tiny_model_dir, toy_files):
    clf = _fit(
        tiny_model_dir, toy_files, overrides=["phases.0.freeze=[encoder]", "phases.*.epochs=1"]
    )
    before, _ = load_encoder(tiny_model_dir)
    after = clf.model_.encoder.state_dict()
    for k, v in before.state_dict().items():
        torch.testing.assert_close(after[k].cpu(), v)


def test_weight_interpolation_moves_the_encoder_between_pretrained_and_trained(
    tiny_model_dir, toy_files
):
    over = ["phases.*.epochs=2"]
    trained = _fit(tiny_model_dir, toy_files, overrides=over).model_.encoder.state_dict()
    records = []
    half = _fit(
        tiny_model_dir,
        toy_files,
        overrides=[*over, "recipe.weight_interpolation=0.5"],
        log=records.append,
    ).model_.encoder.state_dict()
    zero = _fit(tiny_model_dir, toy_files, overrides=[*over, "recipe.weight_interpolation=0"])
    pretrained = load_encoder(tiny_model_dir)[0].state_dict()
    moved = 0
    for k, v in pretrained.items():
        torch.testing.assert_close(zero.model_.encoder.state_dict()[k].cpu(), v)
        if v.is_floating_point():
            torch.testing.assert_close(half[k].cpu(), (trained[k].cpu() + v) / 2)
            moved += not torch.equal(trained[k].cpu(), v)
    assert moved > 10  # training did change the weights, so the checks above compare something
    assert {"weight_interpolation": 0.5} in records
    with pytest.raises(ContrafitError, match="weight_interpolation must be in"):
        ContrafitClassifier(tiny_model_dir, "ce", overrides=["recipe.weight_interpolation=1.5"])


def test_predict_before_fit_is_a_clear_error():
    with pytest.raises(ContrafitError, match="not trained yet"):
        ContrafitClassifier("default", "ce").predict(["x"])


def test_history_is_json_serialisable(tiny_model_dir, toy_files):
    clf = _fit(tiny_model_dir, toy_files, overrides=["phases.*.epochs=1"])
    json.dumps(clf.history_)


def test_mlp_head_and_cls_pooling_learn_too(tiny_model_dir, toy_files):
    clf = _fit(tiny_model_dir, toy_files, overrides=["model.head=mlp", "model.pooling=cls"])
    assert isinstance(clf.model_.head[2], torch.nn.GELU)  # the mlp head is really in use
    assert clf.evaluate(toy_files["test"])["accuracy"] >= 0.9


def test_label_texts_join_the_training_texts_the_logreg_is_fitted_on(tiny_model_dir, toy_files):
    over = ["phases.*.max_steps=1"]
    plain = _fit(tiny_model_dir, toy_files, overrides=over)
    grown = _fit(tiny_model_dir, toy_files, overrides=[*over, "recipe.label_texts.copies=3"])
    n = len(load_dataset(toy_files["train"]))
    assert plain.bank_.train_embeddings.shape[0] == n
    assert grown.bank_.train_embeddings.shape[0] == n + 3 * 2
    # the last rows are the templated texts: three identical embeddings per class
    tail = grown.bank_.train_embeddings[n:]
    torch.testing.assert_close(tail[0], tail[2])
    assert not torch.allclose(tail[0], tail[3])


def test_agreement_scale_gives_as_many_label_texts_as_the_names_earn(
    tiny_model_dir, toy_files, tmp_path
):
    over = ["phases.*.max_steps=1", "recipe.label_texts.copies=1"]
    scaled = [*over, "recipe.label_texts.agreement_scale=0.5", "recipe.label_texts.template='{}'"]
    # texts that are their label's name: the names label all of them right (kappa 1)
    named = write_jsonl(tmp_path / "named.jsonl", [{"text": n, "label": n} for n in ["a", "b"] * 8])
    records: list[dict] = []
    clf = ContrafitClassifier(tiny_model_dir, "ce", overrides=[*TINY, *scaled], progress=False).fit(
        named, log=records.append
    )
    assert {"label_name_agreement": 1.0} in records
    assert clf.label_name_agreement_ == 1.0
    assert clf.label_texts_added_ == 2 * round(0.5 * 1.0 * 8)
    # copies=0 turns label texts off, whatever the names would earn
    off = [*scaled, "recipe.label_texts.copies=0"]
    clf = ContrafitClassifier(tiny_model_dir, "ce", overrides=[*TINY, *off], progress=False)
    assert clf.fit(named).label_texts_added_ == 0
    # the random tiny encoder's names say nothing of the toy task: the floor of 1 copy holds
    records.clear()
    clf = _fit(tiny_model_dir, toy_files, overrides=scaled, log=records.append)
    (agreement,) = [r["label_name_agreement"] for r in records if "label_name_agreement" in r]
    train = load_dataset(toy_files["train"])
    per_class = len(train) / len(set(train.labels))
    assert 0.0 <= agreement <= 1.0
    assert clf.label_texts_added_ == 2 * max(1, round(0.5 * agreement * per_class))
