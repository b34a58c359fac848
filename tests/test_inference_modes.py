import numpy as np
import pytest
import torch
from conftest import TINY

from contrafit import ContrafitClassifier
from contrafit.config import InferenceConfig
from contrafit.errors import ConfigError
from contrafit.scoring import Bank, probabilities


def test_knn_votes_and_proxy_mixture_by_hand():
    bank = Bank(
        train_embeddings=torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]),
        train_labels=torch.tensor([0, 0, 1]),
        proxies=torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
    )
    logits = torch.tensor([[0.0, 0.0]])
    emb = torch.tensor([[1.0, 0.05]])
    knn = probabilities(logits, emb, InferenceConfig(mode="knn", knn_k=1), bank)
    assert knn.tolist() == [[1.0, 0.0]]
    cfg = InferenceConfig(mode="proxy", head_weight=0.4, proxy_scale=10.0)
    x = torch.nn.functional.normalize(emb, dim=-1)
    expected = 0.4 * torch.tensor([[0.5, 0.5]]) + 0.6 * torch.softmax(10 * x @ bank.proxies.T, -1)
    torch.testing.assert_close(probabilities(logits, emb, cfg, bank), expected)
    with pytest.raises(ConfigError, match="needs proxies"):
        probabilities(logits, emb, cfg, Bank(bank.train_embeddings, bank.train_labels))


def test_logreg_is_scikit_learns_logistic_regression_on_the_bank():
    from sklearn.linear_model import LogisticRegression

    gen = torch.Generator().manual_seed(0)
    train = torch.nn.functional.normalize(torch.randn(12, 4, generator=gen), dim=-1)
    labels = torch.tensor([0, 1, 2] * 4)
    emb = torch.randn(5, 4, generator=gen)
    cfg = InferenceConfig(mode="logreg", logreg_c=0.5)
    got = probabilities(torch.zeros(5, 3), emb, cfg, Bank(train, labels))
    ref = LogisticRegression(C=0.5, max_iter=1000).fit(train.numpy(), labels.numpy())
    x = torch.nn.functional.normalize(emb, dim=-1).numpy()
    np.testing.assert_allclose(got.numpy(), ref.predict_proba(x), atol=1e-6)
    assert got.argmax(-1).tolist() == ref.predict(x).tolist()


def test_balanced_logreg_weighs_classes_and_changes_nothing_on_balanced_data():
    from sklearn.linear_model import LogisticRegression

    gen = torch.Generator().manual_seed(1)
    train = torch.nn.functional.normalize(torch.randn(24, 4, generator=gen), dim=-1)
    emb = torch.randn(50, 4, generator=gen)
    x = torch.nn.functional.normalize(emb, dim=-1).numpy()

    def both(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(
            probabilities(
                torch.zeros(50, 2),
                emb,
                InferenceConfig(mode="logreg", logreg_class_weight=weight),
                Bank(train, labels),
            )
            for weight in ("none", "balanced")
        )

    rare = torch.tensor([0] * 20 + [1] * 4)  # 5:1
    plain, balanced = both(rare)
    ref = LogisticRegression(max_iter=1000, class_weight="balanced").fit(train.numpy(), rare)
    np.testing.assert_allclose(balanced.numpy(), ref.predict_proba(x), atol=1e-6)
    assert balanced[:, 1].mean() > plain[:, 1].mean()  # the rare class is given more room
    plain, balanced = both(torch.tensor([0, 1] * 12))  # K per class: every weight is 1
    torch.testing.assert_close(plain, balanced)


@pytest.mark.parametrize(
    "recipe, modes",
    [("proxy-anchor", {"head", "knn", "logreg", "proxy"}), ("ce", {"head", "knn", "logreg"})],
)
def test_modes_are_saved_and_selectable_at_predict_time(
    tiny_model_dir, toy_files, tmp_path, recipe, modes
):
    clf = ContrafitClassifier(
        tiny_model_dir, recipe, overrides=[*TINY, "phases.*.epochs=3"], progress=False
    )
    clf.fit(toy_files["train"], dev=toy_files["dev"])
    assert set(clf.available_inference_modes()) == modes
    clf.save(tmp_path / "m")
    loaded = ContrafitClassifier.load(tmp_path / "m")
    for mode in modes:
        p = loaded.predict_proba(toy_files["test"], inference=mode)
        np.testing.assert_allclose(
            p, clf.predict_proba(toy_files["test"], inference=mode), atol=1e-6
        )
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    results = loaded.evaluate_modes(toy_files["test"])
    assert set(results) == modes


def test_with_knn_inference_the_best_epoch_is_chosen_by_knn_dev_accuracy(tiny_model_dir, toy_files):
    """Each epoch's dev score is the kNN one, so the kept model's dev accuracy is its kNN accuracy
    (the head's would be a different number on most epochs of this barely trained model)."""
    overrides = [*TINY, "phases.*.epochs=4", "phases.*.lr=3e-4", "inference.mode=knn"]
    clf = ContrafitClassifier(tiny_model_dir, "scl", overrides=overrides, progress=False)
    clf.fit(toy_files["train"], dev=toy_files["dev"])
    history = clf.history_[-1]["dev_history"]
    modes = clf.evaluate_modes(toy_files["dev"])
    assert clf.history_[-1]["best_dev"]["accuracy"] == modes["knn"]["accuracy"]
    assert max(h["accuracy"] for h in history) == modes["knn"]["accuracy"]


def test_logreg_epoch_selection_scores_epochs_by_the_chosen_predictions(tiny_model_dir, toy_files):
    """epoch_selection=inference: each epoch's dev score, and so the kept model's, is its logistic
    regression's; head (what auto means for logreg): the head's. Training is the same either way,
    so the two runs see the same models and differ only in how their epochs are scored."""
    accuracy_history = {}
    for selection, scored_by in (("inference", "logreg"), ("head", "head")):
        overrides = [
            *TINY,
            "phases.*.epochs=4",
            "phases.*.lr=3e-4",
            "inference.mode=logreg",
            f"inference.epoch_selection={selection}",
        ]
        clf = ContrafitClassifier(tiny_model_dir, "scl", overrides=overrides, progress=False)
        clf.fit(toy_files["train"], dev=toy_files["dev"])
        history = clf.history_[-1]["dev_history"]
        kept = clf.evaluate_modes(toy_files["dev"])[scored_by]["accuracy"]
        assert clf.history_[-1]["best_dev"]["accuracy"] == kept
        assert max(h["accuracy"] for h in history) == kept
        accuracy_history[selection] = [h["accuracy"] for h in history]
    assert accuracy_history["inference"] != accuracy_history["head"]


def test_epoch_selection_by_inference_needs_a_bank_mode():
    with pytest.raises(
        ConfigError, match="epoch_selection=inference needs inference.mode knn or logreg"
    ):
        InferenceConfig(mode="head", epoch_selection="inference").selects_epochs()
    assert not InferenceConfig(mode="logreg").selects_epochs()  # auto keeps the head for logreg
    assert InferenceConfig(mode="knn").selects_epochs()
    assert InferenceConfig(mode="logreg", epoch_selection="inference").selects_epochs()


def test_knn_epoch_choice_uses_the_saved_models_bank_also_when_self_training(
    tiny_model_dir, toy_files
):
    """A self-training phase trains on pseudo-labeled texts too, but the saved bank holds the
    labeled examples only: the dev kNN that picks the epoch must use that same bank."""
    from conftest import toy_rows

    overrides = [*TINY, "phases.*.epochs=4", "phases.*.lr=3e-4", "inference.mode=knn"]
    clf = ContrafitClassifier(tiny_model_dir, "scl-self-train", overrides=overrides, progress=False)
    pool = [r["text"] for r in toy_rows(40, seed=9)]
    clf.fit(toy_files["train"], dev=toy_files["dev"], unlabeled=pool)
    assert clf.history_[-1]["steps"] > 0
    knn = clf.evaluate_modes(toy_files["dev"])["knn"]["accuracy"]
    assert clf.history_[-1]["best_dev"]["accuracy"] == knn
