"""Artifact round trip and refusal of tampered artifacts."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from stancekit.errors import ArtifactError
from stancekit.model.artifact import (
    load_torch_model,
    read_manifest,
    verify_artifact,
    write_manifest,
)
from stancekit.serve.predictor import Predictor

SENTENCES = ["Japan signed a gas deal with Russia.", "India joined the sanctions against Moscow.", "It rained."]


def _copy(src, tmp_path):
    dst = tmp_path / "artifact"
    shutil.copytree(src, dst)
    return dst


def test_artifact_round_trip_gives_identical_probabilities(tiny_artifact, tmp_path):
    a = Predictor(tiny_artifact).predict_proba(SENTENCES)
    b = Predictor(_copy(tiny_artifact, tmp_path)).predict_proba(SENTENCES)
    for head in a:
        np.testing.assert_array_equal(a[head], b[head])


def test_artifact_predictions_match_training_model_logits(tiny_artifact):
    import torch

    model = load_torch_model(verify_artifact(tiny_artifact))
    pred = Predictor(tiny_artifact, max_batch_tokens=64)
    enc = pred.encode(SENTENCES)
    with torch.inference_mode():
        for i, ids in enumerate(enc.ids):
            out = model(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long))
            t = pred.manifest.heads["stance"].temperature
            p = torch.softmax(out["stance"] / t, -1).numpy()[0]
            np.testing.assert_allclose(pred.predict_proba([SENTENCES[i]])["stance"][0], p, atol=1e-5)


def test_artifact_corrupted_weights_refused(tiny_artifact, tmp_path):
    art = _copy(tiny_artifact, tmp_path)
    raw = bytearray((art / "model.safetensors").read_bytes())
    raw[-10] ^= 0xFF
    (art / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="checksum mismatch for model.safetensors"):
        Predictor(art)


def test_artifact_edited_label_list_refused(tiny_artifact, tmp_path):
    art = _copy(tiny_artifact, tmp_path)
    manifest = json.loads((art / "manifest.json").read_text())
    labels = manifest["heads"]["stance"]["labels"]
    manifest["heads"]["stance"]["labels"] = [labels[1], labels[0], labels[2]]
    (art / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="label order"):
        verify_artifact(art)


def test_artifact_expected_heads_mismatch_refused(tiny_artifact):
    with pytest.raises(ArtifactError, match="differ from the expected"):
        verify_artifact(tiny_artifact, expected_heads={"stance": ["a", "b", "c"]})


def test_artifact_missing_file_refused(tiny_artifact, tmp_path):
    art = _copy(tiny_artifact, tmp_path)
    (art / "tokenizer" / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        verify_artifact(art)


def test_artifact_rechecksummed_edit_still_caught_by_weights_metadata(tiny_artifact, tmp_path):
    art = _copy(tiny_artifact, tmp_path)
    manifest = read_manifest(art)
    heads = dict(manifest.heads)
    heads["sentiment"] = heads["sentiment"].model_copy(update={"labels": ["neg", "neu", "pos"]})
    write_manifest(art, manifest.model_copy(update={"heads": heads}))
    with pytest.raises(ArtifactError, match="does not match the weights"):
        verify_artifact(art)


def test_artifact_not_a_directory_is_named(tmp_path):
    with pytest.raises(ArtifactError, match="not a stancekit artifact"):
        verify_artifact(tmp_path)
