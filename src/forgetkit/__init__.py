"""forgetkit: control what a fine-tuned language model keeps and what it loses."""

__version__ = "0.1.0"
