"""Label names as training texts: SetFit's ``get_templated_dataset`` (Tunstall et al. 2022).

A pre-trained sentence encoder already places "This sentence is positive." near positive texts:
on the LM-BFF mr dev splits, all-MiniLM-L6-v2 labels 70 % of the texts right by that cosine alone,
more than a 16-per-class fine-tune scores on test. Each class's name, put in a template, joins the
training texts ``copies`` times, so every phase (pairs, probe, fine-tuning) and the logistic
regression see where the encoder puts the class's meaning. Labels that are numbers ("0", "1")
have no meaning to place, so data labelled only by numbers gets no label texts.

How much the names say differs by task: "positive" labels 70 % of mr's texts, "ABBR" next to
nothing of trec's. ``copies_for_agreement`` lets the names count as many examples as they earn on
the labeled texts themselves (Cohen's kappa of the names alone labelling them).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from sklearn.metrics import cohen_kappa_score

from contrafit.data.loading import TextDataset


def label_sentence(template: str, label: str) -> str:
    """The template with the label's name in it; ``not_equivalent`` reads ``not equivalent``."""
    return template.format(label.replace("_", " "))


def _is_number(name: str) -> bool:
    try:
        float(name)
    except ValueError:
        return False
    return True


def names_mean_something(names: list[str]) -> bool:
    """False when every label is a number: "This sentence is 0." says nothing about class 0."""
    return not all(_is_number(name) for name in names)


def label_names(data: TextDataset) -> list[str]:
    """``data``'s distinct labels in first-seen order (the order label texts are added in)."""
    return list(dict.fromkeys(data.labels or []))


def gets_label_texts(data: TextDataset) -> bool:
    """Whether label texts apply: labelled single texts whose labels are not only numbers."""
    if data.labels is None or data.is_pair:
        return False
    return names_mean_something(label_names(data))


def name_agreement(
    data: TextDataset, template: str, embed: Callable[[list[str]], torch.Tensor]
) -> float:
    """Cohen's kappa between ``data``'s labels and the label each text's nearest (cosine) label
    sentence gives it, clipped at 0: 0 when the names label no better than chance, 1 when they
    label every text right. ``embed`` maps texts to their pooled vectors."""
    if not gets_label_texts(data):
        raise ValueError(f"{data.source}: its labels have no names to agree with")
    names = label_names(data)
    vectors = F.normalize(embed(data.texts + [label_sentence(template, n) for n in names]), dim=-1)
    texts, sentences = vectors[: len(data)], vectors[len(data) :]
    guessed = [names[i] for i in (texts @ sentences.T).argmax(dim=1).tolist()]
    kappa = cohen_kappa_score(data.labels, guessed)
    return max(0.0, float(kappa)) if kappa == kappa else 0.0  # nan: one label guessed, all same


def copies_for_agreement(data: TextDataset, agreement: float, scale: float, floor: int) -> int:
    """Label texts per class: ``scale · agreement · (labeled texts per class)``, at least ``floor``.
    With scale 1 and names that label 40 % better than chance, a 16-per-class task gets 6."""
    per_class = len(data) / len(label_names(data))
    return max(floor, round(scale * agreement * per_class))


def with_label_texts(data: TextDataset, template: str, copies: int) -> TextDataset:
    """``data`` plus ``copies`` templated texts per label, in the labels' first-seen order.
    Text pairs are returned unchanged: a label name says nothing about how two texts relate."""
    if copies <= 0 or not gets_label_texts(data):
        return data
    names = label_names(data)
    texts = [label_sentence(template, name) for name in names for _ in range(copies)]
    labels = [name for name in names for _ in range(copies)]
    return TextDataset(
        texts=data.texts + texts,
        labels=data.labels + labels,
        source=data.source,
    )
