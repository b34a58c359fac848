import json

import pytest

from contrafit.data import (
    LabelMap,
    TextDataset,
    inject_label_noise,
    load_dataset,
    sample_k_per_class,
)
from contrafit.errors import DataError


def test_jsonl_csv_tsv_and_column_mapping(tmp_path):
    (tmp_path / "a.jsonl").write_text(
        '{"text": "hi", "label": 1}\n\n{"text": "yo", "label": "0"}\n'
    )
    (tmp_path / "b.csv").write_text('sentence,y\n"hello, world",pos\nbye,neg\n')
    (tmp_path / "c.tsv").write_text("text\ttext_pair\tlabel\na\tb\tx\nc\td\ty\n")
    a = load_dataset(tmp_path / "a.jsonl")
    assert a.texts == ["hi", "yo"] and a.labels == ["1", "0"] and not a.is_pair
    b = load_dataset(tmp_path / "b.csv", columns={"text": "sentence", "label": "y"})
    assert b.texts == ["hello, world", "bye"] and b.labels == ["pos", "neg"]
    c = load_dataset(tmp_path / "c.tsv")
    assert c.text_pairs == ["b", "d"] and c.labels == ["x", "y"]


def test_hf_dataset_with_class_label_names():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict(
        {"sentence": ["a b", "c d"], "y": [0, 1]},
        features=datasets.Features(
            {"sentence": datasets.Value("string"), "y": datasets.ClassLabel(names=["neg", "pos"])}
        ),
    )
    data = load_dataset(ds, columns={"text": "sentence", "label": "y"})
    assert data.texts == ["a b", "c d"] and data.labels == ["neg", "pos"]


def _error(tmp_path, name: str, content: bytes, **kw) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as e:
        load_dataset(path, **kw)
    return str(e.value)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataError, match=r"nope\.jsonl: file not found"):
        load_dataset(tmp_path / "nope.jsonl")


def test_empty_file(tmp_path):
    assert "e.jsonl: the file is empty" in _error(tmp_path, "e.jsonl", b"\n  \n")


def test_missing_column_suggests_mapping(tmp_path):
    msg = _error(tmp_path, "m.jsonl", b'{"sentence": "x", "label": "a"}\n')
    assert "m.jsonl, line 1: missing column 'text'; found ['label', 'sentence']" in msg
    assert "--text-column" in msg


def test_missing_label_column(tmp_path):
    msg = _error(tmp_path, "m.jsonl", b'{"text": "x"}\n')
    assert "missing column 'label'" in msg and "--label-column" in msg


def test_invalid_json_line_names_line(tmp_path):
    msg = _error(tmp_path, "j.jsonl", b'{"text": "x", "label": "a"}\n{"text": "y", label: b}\n')
    assert msg.startswith(f"{tmp_path / 'j.jsonl'}, line 2: invalid JSON")


def test_non_utf8_names_line_and_fix(tmp_path):
    msg = _error(
        tmp_path, "u.jsonl", b'{"text": "ok", "label": "a"}\n{"text": "caf\xe9", "label": "b"}\n'
    )
    assert "u.jsonl, line 2: bytes that are not UTF-8" in msg and "UTF-8" in msg


def test_empty_text_names_line_and_field(tmp_path):
    msg = _error(
        tmp_path, "t.jsonl", b'{"text": "a", "label": "x"}\n{"text": "  ", "label": "y"}\n'
    )
    assert "t.jsonl, line 2: field 'text' is empty" in msg


def test_unknown_file_type(tmp_path):
    assert "unknown file type '.txt'" in _error(tmp_path, "x.txt", b"hello\n")


def test_single_class_is_refused():
    with pytest.raises(DataError, match=r"train.jsonl: found a single class \['a'\]"):
        LabelMap.from_labels(["a", "a"], source="train.jsonl")


def test_unseen_eval_labels_are_named():
    labels = LabelMap.from_labels(["neg", "pos"])
    with pytest.raises(
        DataError, match=r"test.jsonl: label\(s\) \['neutral'\] never appear in training"
    ):
        labels.encode(["pos", "neutral"], source="test.jsonl")


def test_label_order_is_stable_and_natural():
    assert LabelMap.from_labels(["10", "2", "1", "0"]).labels == ["0", "1", "2", "10"]
    assert LabelMap.from_labels(["pos", "neg"]).labels == ["neg", "pos"]


def _dataset(counts: dict[str, int]) -> TextDataset:
    texts, labels = [], []
    for label, n in counts.items():
        texts += [f"{label} {i}" for i in range(n)]
        labels += [label] * n
    return TextDataset(texts, labels)


def test_k_per_class_takes_all_of_a_small_class_and_is_seeded(caplog):
    data = _dataset({"a": 50, "b": 3, "c": 20})
    s1 = sample_k_per_class(data, 8, seed=7)
    counts = {c: s1.labels.count(c) for c in "abc"}
    assert counts == {"a": 8, "b": 3, "c": 8}
    assert "class 'b' has 3 examples, fewer than K=8: all of them are used" in caplog.text
    assert s1.texts == sample_k_per_class(data, 8, seed=7).texts
    assert s1.texts != sample_k_per_class(data, 8, seed=8).texts


def test_label_noise_flips_exact_fraction_to_other_classes():
    data = _dataset({"a": 40, "b": 40, "c": 20})
    noisy = inject_label_noise(data, 0.3, seed=1)
    flipped = [i for i, (x, y) in enumerate(zip(data.labels, noisy.labels, strict=True)) if x != y]
    assert len(flipped) == 30  # each flip lands on another class, so none is silently kept
    assert noisy.labels == inject_label_noise(data, 0.3, seed=1).labels
    assert noisy.texts == data.texts


def test_jsonl_roundtrip_of_real_lmbff_split():
    from conftest import SHARED_DATA

    path = SHARED_DATA / "lmbff_kshot" / "trec" / "16-42" / "train.jsonl"
    if not path.exists():
        pytest.skip("shared data not present")
    data = load_dataset(path)
    assert len(data) == 96 and len(set(data.labels)) == 6
    assert data.texts[0] == json.loads(path.read_text().splitlines()[0])["text"]


def test_empty_text_can_be_kept_and_is_logged(tmp_path, caplog):
    path = tmp_path / "e.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "", "label": "y"}\n')
    with pytest.raises(DataError, match="--allow-empty-text"):
        load_dataset(path)
    data = load_dataset(path, allow_empty_text=True)
    assert data.texts == ["a", ""]
    assert "e.jsonl, line 2: field 'text' is empty; kept" in caplog.text


def test_label_texts_add_templated_copies_per_class_and_leave_pairs_alone():
    from contrafit.data.label_texts import with_label_texts

    data = TextDataset(["good film", "bad film", "fine"], ["pos", "not_pos", "pos"])
    grown = with_label_texts(data, "This sentence is {}.", copies=2)
    assert grown.texts[:3] == data.texts and grown.labels[:3] == data.labels
    assert grown.texts[3:] == ["This sentence is pos."] * 2 + ["This sentence is not pos."] * 2
    assert grown.labels[3:] == ["pos", "pos", "not_pos", "not_pos"]
    assert with_label_texts(data, "{}", copies=0) is data
    pairs = TextDataset(["a", "b"], ["x", "y"], text_pairs=["c", "d"])
    assert with_label_texts(pairs, "{}", copies=2) is pairs
    numbered = TextDataset(["good film", "bad film"], ["1", "0"])
    assert with_label_texts(numbered, "{}", copies=2) is numbered
    mixed = TextDataset(["good film", "bad film"], ["1", "none"])
    assert len(with_label_texts(mixed, "{}", copies=2)) == 6


def test_name_agreement_is_kappa_of_the_nearest_label_sentence():
    import torch

    from contrafit.data.label_texts import copies_for_agreement, name_agreement

    # 2-d "embeddings": a text's vector says which name it sits next to
    where = {"pos": [1.0, 0.1], "neg": [0.1, 1.0]}

    def embed(texts):
        return torch.tensor([where["neg" if "neg" in t or "bad" in t else "pos"] for t in texts])

    agree = TextDataset(["good", "fine", "bad", "bad day"], ["pos", "pos", "neg", "neg"])
    assert name_agreement(agree, "It is {}.", embed) == pytest.approx(1.0)
    half = TextDataset(["good", "bad", "bad", "good"], ["pos", "pos", "neg", "neg"])
    assert name_agreement(half, "It is {}.", embed) == pytest.approx(0.0)
    wrong = TextDataset(["bad", "bad", "good", "fine"], ["pos", "pos", "neg", "neg"])
    assert name_agreement(wrong, "It is {}.", embed) == 0.0  # kappa -1, clipped
    # 16 per class: kappa 0.4 earns 6 copies; the floor holds when the names earn fewer
    sixteen = TextDataset(["t"] * 32, ["pos"] * 16 + ["neg"] * 16)
    assert copies_for_agreement(sixteen, 0.4, scale=1.0, floor=2) == 6
    assert copies_for_agreement(sixteen, 0.05, scale=1.0, floor=2) == 2
    assert copies_for_agreement(sixteen, 0.4, scale=2.0, floor=2) == 13
    pairs = TextDataset(["a", "b"], ["x", "y"], text_pairs=["c", "d"])
    with pytest.raises(ValueError, match="no names"):
        name_agreement(pairs, "{}", embed)


def test_label_texts_config_refuses_a_template_without_one_slot():
    from contrafit.config import LabelTextsConfig
    from contrafit.errors import ConfigError

    with pytest.raises(ConfigError, match="one '\\{\\}'"):
        LabelTextsConfig(copies=2, template="This sentence is")
    with pytest.raises(ConfigError, match="copies must be >= 0"):
        LabelTextsConfig(copies=-1)
    with pytest.raises(ConfigError, match="agreement_scale must be >= 0"):
        LabelTextsConfig(agreement_scale=-1.0)
