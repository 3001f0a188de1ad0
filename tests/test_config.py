"""Config schema: defaults, overrides, and errors that name the key and value."""

from __future__ import annotations

import pytest
from conftest import REPO

from stancekit.config import apply_overrides, config_from_dict, load_config
from stancekit.errors import ConfigError


@pytest.mark.parametrize("name", ["default.yaml", "quick.yaml", "target_stance.yaml"])
def test_config_shipped_files_validate(name):
    cfg = load_config(REPO / "configs" / name)
    assert cfg.heads


def test_config_override_changes_nested_value():
    cfg = load_config(REPO / "configs" / "default.yaml", ["training.epochs=2", "model.max_length=96"])
    assert cfg.training.epochs == 2 and cfg.model.max_length == 96


def test_config_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"training.epochz"):
        load_config(REPO / "configs" / "default.yaml", ["training.epochz=2"])


def test_config_bad_value_names_key_and_value():
    with pytest.raises(ConfigError, match=r"training.epochs.*got 0"):
        load_config(REPO / "configs" / "default.yaml", ["training.epochs=0"])


def test_config_duplicate_labels_rejected():
    data = {"heads": {"stance": {"labels": ["a", "b", "a"]}}, "profile": {"lean_head": None}}
    with pytest.raises(ConfigError, match="repeated"):
        config_from_dict(data)


def test_config_lean_labels_must_belong_to_lean_head():
    data = {"heads": {"stance": {"labels": ["favor", "against", "none"]}}}
    with pytest.raises(ConfigError, match="profile.lean_positive"):
        config_from_dict(data)


def test_config_override_without_equals_is_refused():
    with pytest.raises(ConfigError, match="expected 'section.key=value'"):
        apply_overrides({}, ["training.epochs"])


def test_config_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
