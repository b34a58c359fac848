"""Modeling: encoder loading (offline default), pooling, heads, the classifier module."""

from contrafit.modeling.encoder import load_encoder, resolve_model_path
from contrafit.modeling.model import ModelOutput, TextClassifier

__all__ = ["ModelOutput", "TextClassifier", "load_encoder", "resolve_model_path"]
