"""stancekit: sentence stance (US alignment vs Russia engagement) and sentiment, and article stance profiles."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "ArticleProfile",
    "SentencePrediction",
    "StanceService",
    "StancekitError",
    "load_config",
    "train",
    "__version__",
]


def __getattr__(name: str):
    # Lazy so `import stancekit` stays cheap and the light (ONNX) serving path never imports torch.
    if name == "StanceService":
        from stancekit.serve.service import StanceService

        return StanceService
    if name in ("ArticleProfile", "SentencePrediction"):
        from stancekit.serve import schemas

        return getattr(schemas, name)
    if name == "load_config":
        from stancekit.config import load_config

        return load_config
    if name == "train":
        from stancekit.training.train import train

        return train
    if name == "StancekitError":
        from stancekit.errors import StancekitError

        return StancekitError
    raise AttributeError(f"module 'stancekit' has no attribute {name!r}")
