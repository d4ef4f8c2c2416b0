"""Tiny fitted models for the ONNX tests, and the data they predict on."""

import numpy as np
import torch

SENTENCES = ["I love it", "I hate it", "great fun", "awful stuff really", "a fine film", "bad bad bad",
             "wonderful acting", "boring and slow"]
LABELS = np.array(["pos", "neg", "pos", "neg", "pos", "neg", "pos", "neg"])
MAX_LENGTH = 16  # 14 text tokens per window: LONG spans several
LONG = "the plot moves on and on " * 12 + "and in the end it is wonderful"
# Texts to predict: short ones, one longer than max_length (truncated, or windows), an empty one, one of many words.
TEXTS = [*SENTENCES, LONG, "", "word " * 100]


def save_tiny_bert(path) -> str:
    """A two-layer BERT of width 32 with MiniLM's tokenizer, saved as a backbone directory."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from sktransfer.backbones.huggingface import minilm_path

    AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True).save_pretrained(path)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        BertModel(config).save_pretrained(path)
    return str(path)


def tabular(n=60, seed=0):
    """``n`` rows of 5 features; the label says whether the first two sum above 0."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 5)) * [1, 2, 3, 100, 0.01] + [0, 0, 5, 1000, 0]
    return X, (X[:, 0] + X[:, 1] / 2 > 0).astype(int)
