"""Trains the real offline all-MiniLM-L6-v2 on an LM-BFF 16-shot split (tens of seconds)."""

import pytest
from conftest import SHARED_DATA

from contrafit import ContrafitClassifier

SPLIT = SHARED_DATA / "lmbff_kshot" / "sst-2" / "16-42"


@pytest.mark.slow
def test_real_minilm_ce_on_sst2_is_far_above_chance():
    if not SPLIT.exists():
        pytest.skip(f"{SPLIT} not present")
    clf = ContrafitClassifier("default", "ce", seed=42, progress=False)
    clf.fit(SPLIT / "train.jsonl", dev=SPLIT / "dev.jsonl")
    metrics = clf.evaluate(SPLIT / "test.jsonl")
    # chance is 50 % (balanced test set); 16 examples a class give ~70 % here
    assert metrics["accuracy"] > 0.62, metrics["accuracy"]
    assert metrics["n"] == 872
