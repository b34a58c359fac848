"""contrafit: contrastive and metric-learning fine-tuning of Transformer encoders for few-shot text
classification."""

__version__ = "0.1.0"

from contrafit.classifier import ContrafitClassifier, build_run_config  # noqa: E402
from contrafit.data import TextDataset, load_dataset  # noqa: E402

__all__ = ["ContrafitClassifier", "TextDataset", "__version__", "build_run_config", "load_dataset"]
