"""Data: loading with clear errors, label maps, few-shot sampling, noise, tokenised batches."""

from contrafit.data.labels import LabelMap
from contrafit.data.loading import TextDataset, load_dataset
from contrafit.data.sampling import inject_label_noise, sample_k_per_class

__all__ = ["LabelMap", "TextDataset", "inject_label_noise", "load_dataset", "sample_k_per_class"]
