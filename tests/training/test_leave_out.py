"""Leave-one-source-out training and adding results to an artifact's card."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import tiny_config_dict

from stancekit.config import config_from_dict
from stancekit.errors import DataError
from stancekit.model.artifact import verify_artifact
from stancekit.training.card import add_to_card
from stancekit.training.leave_out import leave_one_source_out


def test_leave_one_source_out_trains_without_the_source_and_tests_on_it(tmp_path, tiny_encoder_dir, tiny_data):
    cfg = config_from_dict(tiny_config_dict(tiny_encoder_dir, tiny_data, epochs=1, baselines=False))
    result = leave_one_source_out(cfg, "beta", tmp_path / "without_beta")
    # beta rows: 48 in train (excluded) and 30 in test (evaluated); dev is all alpha.
    assert result["n_eval"] == 30
    metrics = json.loads((tmp_path / "without_beta" / "metrics.json").read_text())
    assert metrics["rows"]["train"] == 96
    assert set(result["macro_f1"]) == {"stance", "sentiment"}


def test_leave_one_source_out_unknown_source_is_refused(tmp_path, tiny_encoder_dir, tiny_data):
    cfg = config_from_dict(tiny_config_dict(tiny_encoder_dir, tiny_data, epochs=1, baselines=False))
    with pytest.raises(DataError, match="no dev/test rows"):
        leave_one_source_out(cfg, "gamma", tmp_path / "x")


def test_add_to_card_keeps_the_artifact_verifiable(tiny_artifact, tmp_path):
    art = tmp_path / "art"
    shutil.copytree(tiny_artifact, art)
    add_to_card(art, "leave_one_source_out", {"beta": {"n_eval": 30, "macro_f1": {"stance": 0.5, "sentiment": 0.6}}})
    verify_artifact(art)
    assert "Leave one source out" in (art / "README.md").read_text()
    assert json.loads((art / "metrics.json").read_text())["leave_one_source_out"]["beta"]["n_eval"] == 30
