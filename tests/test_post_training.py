"""Noise, the DAE decoder, imbalance correction, and the multi-phase recipes end to end."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TINY, toy_rows

from contrafit import ContrafitClassifier
from contrafit.config import ModelConfig, ObjectiveConfig
from contrafit.data import TextDataset
from contrafit.data.augment import correct_imbalance, resize_ratio
from contrafit.data.noise import complementary_masks, delete_words, mlm_mask
from contrafit.modeling import TextClassifier, load_encoder
from contrafit.objectives import Step, TaskInfo, build_objective
from contrafit.training.recipes import list_recipes


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_word_deletion_is_seeded_keeps_specials_and_deletes_whole_words():
    ids = torch.tensor([[101, 11, 12, 13, 14, 15, 16, 102, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1, 0]])
    words = torch.tensor([[-1, 0, 0, 1, 2, 2, 3, -1, -1]])  # word 0 and 2 have two pieces
    a = delete_words(ids, mask, words, 0.6, _gen(1), pad_id=0)
    b = delete_words(ids, mask, words, 0.6, _gen(1), pad_id=0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    kept = a[0][0][a[1][0].bool()].tolist()
    assert kept[0] == 101 and kept[-1] == 102 and len(kept) >= 3  # specials + at least one word
    assert (11 in kept) == (12 in kept) and (14 in kept) == (15 in kept)  # whole words only
    counts = [
        delete_words(ids, mask, words, 0.6, _gen(s), 0)[1].sum().item() - 2 for s in range(300)
    ]
    assert 0.3 < sum(counts) / (300 * 6) < 0.55  # ~40 % of the 6 pieces survive at ratio 0.6


def test_word_deletion_keeps_an_empty_text_as_it_is():
    # LM-BFF's cr 16-13 holds an empty text: [CLS] [SEP] and no word
    ids = torch.tensor([[101, 102, 0, 0], [101, 11, 12, 102]])
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    words = torch.tensor([[-1, -1, -1, -1], [-1, 0, 1, -1]])
    noisy, noisy_mask = delete_words(ids, mask, words, 0.6, _gen(0), pad_id=0)
    assert noisy[0][noisy_mask[0].bool()].tolist() == [101, 102]


def test_complementary_masks_never_overlap_and_cover_the_share():
    maskable = torch.ones(64, 100, dtype=torch.bool)
    maskable[:, :1] = False
    a, b = complementary_masks(maskable, 0.7, _gen(0))
    assert not (a & b).any() and not a[:, 0].any() and not b[:, 0].any()
    assert a.float().sum() / maskable.sum() == pytest.approx(0.35, abs=0.01)
    assert b.float().sum() / maskable.sum() == pytest.approx(0.35, abs=0.01)
    assert (a | b).float().sum() / maskable.sum() == pytest.approx(0.7, abs=0.01)
    a2, _ = complementary_masks(maskable, 0.7, _gen(0))
    assert torch.equal(a, a2)


def test_mlm_mask_80_10_10_and_labels_only_at_selected():
    ids = torch.full((200, 50), 7)
    maskable = torch.ones_like(ids, dtype=torch.bool)
    inputs, labels = mlm_mask(
        ids, maskable, 0.15, mask_token_id=103, vocab_size=1000, generator=_gen(3)
    )
    selected = labels != -100
    assert selected.float().mean() == pytest.approx(0.15, abs=0.01)
    assert (labels[selected] == 7).all() and (inputs[~selected] == 7).all()
    assert (inputs[selected] == 103).float().mean() == pytest.approx(0.8, abs=0.03)


@pytest.mark.parametrize(
    "x, max_k, expected",
    [(100, 100, 1.5), (10, 100, 2.0), (1, 100, 4.0), (50, 100, 1.5), (5, 125, 4 * 1 / 3 * 2)],
)
def test_imbalance_ratio_formula_at_hand_computed_points(x, max_k, expected):
    # f(x) = max(1.5, log(max_k / x) · 4 / log(max_k)); e.g. x=5, max_k=125: log 25 / log 125 = 2/3
    assert resize_ratio(x, max_k) == pytest.approx(expected)


def test_imbalance_correction_grows_small_classes_most_and_keeps_texts_unique():
    texts = [f"this is the example number {i} of the big class" for i in range(100)]
    texts += [f"a small one {i} with the words in it" for i in range(10)]
    data = TextDataset(texts, ["big"] * 100 + ["small"] * 10)
    grown = correct_imbalance(data, seed=0)
    n_big, n_small = grown.labels.count("big"), grown.labels.count("small")
    assert 100 < n_big <= 150 and 10 < n_small <= 20
    assert n_small / 10 > n_big / 100
    assert len(set(zip(grown.texts, grown.labels, strict=True))) == len(grown)
    assert grown.texts == correct_imbalance(data, seed=0).texts


def test_dae_decoder_sees_only_the_sentence_vector(tiny_model_dir):
    encoder, tokenizer = load_encoder(tiny_model_dir)
    model = TextClassifier(encoder, ModelConfig(), 2)
    task = TaskInfo(2, 32, (1, 1), len(tokenizer), 0, tokenizer, encoder.config, tiny_model_dir)
    objective = build_objective([ObjectiveConfig("dae")], task)
    objective.bind(model)
    dae = objective.terms["dae"]
    seen = {}

    def spy(module, args, kwargs):
        seen.update(kwargs)

    handle = dae.decoder.register_forward_pre_hook(spy, with_kwargs=True)
    enc = tokenizer(
        ["a first sentence here", "and a second one"], padding=True, return_tensors="pt"
    )
    words = [[-1 if w is None else w for w in enc.word_ids(i)] for i in range(2)]
    out = objective(Step(model, {**enc, "word_ids": torch.tensor(words)}))
    handle.remove()
    assert seen["encoder_hidden_states"].shape == (2, 1, 32)
    assert "encoder_attention_mask" not in seen or seen["encoder_attention_mask"] is None
    out.loss.backward()
    assert model.encoder.get_input_embeddings().weight.grad.abs().sum() > 0
    # tied: the decoder's self-attention weights are the encoder's own tensors
    dec_layer = dae.decoder.base_model.encoder.layer[0].attention.self.query.weight
    assert dec_layer is model.encoder.encoder.layer[0].attention.self.query.weight


FAST = [*TINY, "phases.*.epochs=2", "phases.*.max_steps=4", "phases.*.batch_size=8"]


@pytest.mark.parametrize("recipe", sorted(list_recipes()))
def test_every_shipped_recipe_runs_every_phase_end_to_end(recipe, tiny_model_dir, toy_files):
    started = []
    clf = ContrafitClassifier(tiny_model_dir, recipe, overrides=FAST, progress=False)

    def log(record):
        if record.get("step") == 1:
            started.append(record["phase"])

    unlabeled = [r["text"] for r in toy_rows(8, seed=5)]  # for post-training and self-training
    clf.fit(toy_files["train"], dev=toy_files["dev"], unlabeled=unlabeled, log=log)
    assert started == [p.name for p in clf.config.recipe.phases]
    assert clf.evaluate(toy_files["test"])["n"] == 40


def test_phases_hand_the_model_on(tiny_model_dir, toy_files, monkeypatch):
    """Each phase starts from the previous phase's weights and changes them."""
    from contrafit.training import trainer

    starts, ends = [], []
    real = trainer.run_phase

    def spy(model, *args, **kwargs):
        starts.append(model.encoder.embeddings.word_embeddings.weight.detach().clone())
        result = real(model, *args, **kwargs)
        ends.append(model.encoder.embeddings.word_embeddings.weight.detach().clone())
        return result

    monkeypatch.setattr(trainer, "run_phase", spy)
    ContrafitClassifier(tiny_model_dir, "dae-cl-ft", overrides=FAST, progress=False).fit(
        toy_files["train"], dev=toy_files["dev"]
    )
    assert len(starts) == 3
    for i in range(3):
        assert not torch.equal(starts[i], ends[i]), f"phase {i} did not change the encoder"
        if i:
            assert torch.equal(starts[i], ends[i - 1]), (
                f"phase {i} did not start where {i - 1} ended"
            )


def test_cmlm_views_hide_disjoint_tokens_and_predict_only_hidden_ones(tiny_model_dir):
    encoder, tokenizer = load_encoder(tiny_model_dir)
    task = TaskInfo(2, 32, (1, 1), len(tokenizer), 0, tokenizer, encoder.config, tiny_model_dir)
    cmlm = build_objective([ObjectiveConfig("cmlm")], task).terms["cmlm"]
    texts = [" ".join(f"word{j}" for j in range(60))] * 40
    enc = tokenizer(texts, return_tensors="pt")
    inputs, mask, labels = cmlm.views(enc["input_ids"], enc["attention_mask"])
    n = len(texts)
    hidden = inputs == tokenizer.mask_token_id
    assert not (hidden[:n] & hidden[n:]).any(), "the two views hide overlapping positions"
    maskable = enc["attention_mask"].bool() & ~torch.isin(
        enc["input_ids"], torch.tensor(tokenizer.all_special_ids)
    )
    share = (hidden[:n] | hidden[n:]).sum() / maskable.sum()
    assert share == pytest.approx(0.7, abs=0.02)
    targets = labels != -100
    assert not (targets & ~hidden).any(), "an MLM target is visible in its own view"
    assert targets[:n].sum() / maskable.sum() == pytest.approx(0.15, abs=0.02)
    assert torch.equal(labels[targets], enc["input_ids"].repeat(2, 1)[targets])
    assert torch.equal(mask, enc["attention_mask"].repeat(2, 1))


def test_cmlm_contrastive_term_is_infonce_between_the_two_views():
    """PML's NT-Xent with pair ids 0..n-1 twice equals SimCLR's loss written from scratch."""
    from pytorch_metric_learning.losses import NTXentLoss

    torch.manual_seed(0)
    a, b = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    z = F.normalize(torch.cat([a, b]), dim=-1)
    tau, n = 0.05, 5
    sim = z @ z.T / tau
    sim.fill_diagonal_(float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    # each anchor: its partner against every other embedding except itself (SimCLR, 2n anchors)
    reference = F.cross_entropy(sim, partner)
    got = NTXentLoss(temperature=tau)(torch.cat([a, b]), torch.arange(n).repeat(2))
    assert got.item() == pytest.approx(reference.item(), rel=1e-6)


def test_each_phase_output_is_kept_and_loads(tiny_model_dir, toy_files, tmp_path):
    clf = ContrafitClassifier(tiny_model_dir, "mlm-ce", overrides=FAST, progress=False)
    clf.fit(toy_files["train"], dev=toy_files["dev"], phase_dir=tmp_path)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["00-mlm", "01-finetune"]
    after_mlm = ContrafitClassifier.load(tmp_path / "00-mlm")
    final = ContrafitClassifier.load(tmp_path / "01-finetune")
    assert [p["name"] for p in after_mlm.history_] == ["mlm"]
    np.testing.assert_allclose(
        final.predict_proba(toy_files["test"]), clf.predict_proba(toy_files["test"]), atol=1e-6
    )
    assert not np.allclose(after_mlm.encode(["a test"]), final.encode(["a test"]))
