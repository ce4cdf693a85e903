"""ctpipe: continuous training for tabular models."""

__version__ = "0.1.0"
