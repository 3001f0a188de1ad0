"""Predictor: input order kept, long inputs windowed or truncated (counted), backends agree with fp32."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from stancekit.errors import ArtifactError
from stancekit.model.artifact import verify_artifact
from stancekit.serve.predictor import Predictor

SENTENCES = [
    "Japan signed a gas deal with Russia.",
    "India joined the new sanctions against Moscow after a long debate in parliament and in the press.",
    "It rained.",
    "Officials from Turkey arrived for the summit in the afternoon.",
]


@pytest.fixture(scope="module")
def onnx_artifact(tiny_artifact, tmp_path_factory):
    """A copy of the tiny artifact with its ONNX exports (fp32 and int8)."""
    from stancekit.serve.onnx_engine import export_onnx

    art = tmp_path_factory.mktemp("onnx") / "art"
    shutil.copytree(tiny_artifact, art)
    export_onnx(verify_artifact(art))
    return art


def test_predict_proba_keeps_input_order_across_batches(tiny_artifact):
    small = Predictor(tiny_artifact, max_batch_tokens=16)  # forces one row per batch, longest first
    big = Predictor(tiny_artifact, max_batch_tokens=4096)
    a, b = small.predict_proba(SENTENCES), big.predict_proba(SENTENCES)
    singles = np.concatenate([big.predict_proba([s])["stance"] for s in SENTENCES])
    np.testing.assert_allclose(a["stance"], b["stance"], atol=1e-5)
    np.testing.assert_allclose(a["stance"], singles, atol=1e-5)
    assert small.stats["batches"] == len(SENTENCES)


def test_probabilities_are_calibrated_distributions(tiny_artifact):
    probs = Predictor(tiny_artifact).predict_proba(SENTENCES)
    for p in probs.values():
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
        assert (p >= 0).all()


def test_long_input_truncated_is_counted_and_logged(tiny_artifact, caplog):
    long = " ".join(["Sanctions on Russia were discussed at length"] * 20) + "."
    pred = Predictor(tiny_artifact, long_text="truncate")
    with caplog.at_level("WARNING"):
        pred.predict_proba([long, "Short one."])
    assert pred.stats["truncated"] == 1
    assert "1 of 2 inputs exceeded max_length" in caplog.text


def test_long_input_window_scoring_averages_windows(tiny_artifact):
    first_half = " ".join(["Japan signed a gas deal with Russia"] * 6)
    second_half = " ".join(["India joined the sanctions against Moscow"] * 6)
    long = f"{first_half} and {second_half}."
    windowed = Predictor(tiny_artifact, long_text="window", window_stride=8)
    enc = windowed.encode([long, "Short one."])
    assert enc.n_truncated == 1 and (enc.owner == 0).sum() >= 2 and (enc.owner == 1).sum() == 1
    probs = windowed.predict_proba([long, "Short one."])["stance"]
    # The long input's probability is the mean of its windows' probabilities.
    from stancekit.model.probs import softmax

    logits = windowed.logits(enc)["stance"]
    t = windowed.manifest.heads["stance"].temperature
    expected = softmax(logits[enc.owner == 0], t).mean(0)
    np.testing.assert_allclose(probs[0], expected, atol=1e-5)
    truncated = Predictor(tiny_artifact, long_text="truncate").predict_proba([long])["stance"][0]
    assert not np.allclose(probs[0], truncated)


def test_empty_input_list_gives_empty_arrays(tiny_artifact):
    probs = Predictor(tiny_artifact).predict_proba([])
    assert probs["stance"].shape == (0, 3)


@pytest.mark.parametrize("backend, min_agreement, atol", [
    ("onnx", 1.0, 1e-4), ("torch-bf16", 0.75, 0.1), ("torch-int8", 0.75, 0.1), ("onnx-int8", 0.75, 0.1),
])
def test_backend_parity_with_fp32(onnx_artifact, backend, min_agreement, atol):
    from conftest import make_rows

    texts = [r["text"] for r in make_rows(60, 11)] + SENTENCES
    ref = Predictor(onnx_artifact).predict_proba(texts)
    got = Predictor(onnx_artifact, backend=backend).predict_proba(texts)
    for head in ref:
        agreement = (ref[head].argmax(1) == got[head].argmax(1)).mean()
        assert agreement >= min_agreement
        assert np.abs(ref[head] - got[head]).mean() < atol


def test_onnx_stale_export_refused(onnx_artifact, tmp_path):
    import json

    art = tmp_path / "art"
    shutil.copytree(onnx_artifact, art)
    manifest = json.loads((art / "onnx" / "onnx_manifest.json").read_text())
    manifest["source_weights_sha256"] = "0" * 64
    (art / "onnx" / "onnx_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="stale"):
        Predictor(art, backend="onnx")


def test_onnx_backend_without_export_names_the_fix(tiny_artifact):
    with pytest.raises(ArtifactError, match="export-onnx"):
        Predictor(tiny_artifact, backend="onnx")


def test_parity_report_flags_backends(onnx_artifact, tiny_data):
    from stancekit.serve.parity import backend_parity, render_parity

    rows = backend_parity(onnx_artifact, tiny_data["dev"], ["onnx"])
    assert {r["head"] for r in rows} == {"stance", "sentiment"}
    assert all(r["agreement"] == 1.0 and r["passes"] for r in rows)
    assert "passes" in render_parity(rows)


def test_workers_score_like_one_worker_and_share_small_inputs(tiny_artifact):
    one = Predictor(tiny_artifact, threads=2, workers=1)
    two = Predictor(tiny_artifact, threads=2, workers=2)
    assert len(two.plan([len(s.split()) + 2 for s in SENTENCES])) >= 2  # a small input still reaches both workers
    a, b = one.predict_proba(SENTENCES * 5), two.predict_proba(SENTENCES * 5)
    for h in a:
        np.testing.assert_allclose(a[h], b[h], atol=1e-5)
    assert two.stats["batches"] >= 2


@pytest.mark.parametrize("workers", [1, 2])
def test_padded_shapes_score_like_exact_shapes(tiny_artifact, workers):
    exact = Predictor(tiny_artifact, workers=workers, max_batch_tokens=64)
    rounded = Predictor(tiny_artifact, workers=workers, max_batch_tokens=64, pad_multiple=8)
    texts = SENTENCES * 3
    a, b = exact.predict_proba(texts), rounded.predict_proba(texts)
    for h in a:
        assert b[h].shape == a[h].shape
        np.testing.assert_allclose(b[h], a[h], atol=1e-5)
    assert rounded.stats["padded_tokens"] > exact.stats["padded_tokens"]


def test_pad_multiple_below_one_is_refused(tiny_artifact):
    from stancekit.errors import ConfigError

    with pytest.raises(ConfigError, match="pad_multiple must be >= 1; got 0"):
        Predictor(tiny_artifact, pad_multiple=0)


def test_workers_beyond_the_threads_are_refused(tiny_artifact):
    from stancekit.errors import ConfigError

    with pytest.raises(ConfigError, match="workers must be between 1 and the 2 inference threads; got 3"):
        Predictor(tiny_artifact, threads=2, workers=3)


def test_traced_engine_matches_eager_on_every_shape(tiny_artifact):
    import torch

    from stancekit.serve.engines import TorchEngine

    art = verify_artifact(tiny_artifact)
    traced, eager = TorchEngine(art), TorchEngine(art, trace=False)
    assert isinstance(traced.model, torch.jit.ScriptModule) and not isinstance(eager.model, torch.jit.ScriptModule)
    rng = np.random.default_rng(0)
    for rows, width in [(1, 1), (1, 40), (3, 7), (8, 2)]:
        ids = rng.integers(1000, 2000, size=(rows, width))
        mask = np.ones_like(ids)
        mask[0, max(1, width // 2):] = 0  # one padded row when the width allows it
        batch = {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        got, want = traced(batch), eager(batch)
        for h in want:
            np.testing.assert_allclose(got[h], want[h], atol=1e-5, err_msg=f"{rows}x{width} {h}")


def test_encoded_rows_regrouped_score_like_the_texts(tiny_artifact):
    from stancekit.serve.predictor import Encoded

    pred = Predictor(tiny_artifact, long_text="window")
    long = " ".join(["Japan signed a gas deal with Russia"] * 12) + "."
    texts = [*SENTENCES, long]
    rows = pred.encode(texts).rows()
    assert len(rows) == len(texts) and len(rows[-1].ids) >= 2 and rows[-1].n_truncated == 1
    merged = Encoded.concat([Encoded.concat(rows[:2]), Encoded.concat(rows[2:])])  # as the scheduler merges requests
    got, want = pred.predict_encoded(merged), pred.predict_proba(texts)
    for h in want:
        np.testing.assert_allclose(got[h], want[h], atol=1e-6)


def test_serving_defaults_come_from_the_artifacts_serve_config(tmp_path, tiny_encoder_dir, tiny_data):
    from conftest import tiny_config_dict

    from stancekit.config import config_from_dict
    from stancekit.training.train import train

    cfg = tiny_config_dict(tiny_encoder_dir, tiny_data, epochs=1)
    cfg["serve"] = {"backend": "torch-bf16", "max_batch_tokens": 64, "long_text": "window", "window_stride": 4}
    art = tmp_path / "art"
    train(config_from_dict(cfg), art)
    trained = Predictor(art)
    assert (trained.backend, trained.max_batch_tokens, trained.long_text) == ("torch-bf16", 64, "window")
    chosen = Predictor(art, backend="torch", max_batch_tokens=512, long_text="truncate")
    assert (chosen.backend, chosen.max_batch_tokens, chosen.long_text) == ("torch", 512, "truncate")


ARTICLE = [
    "Japan's prime minister met Putin in Sochi on Friday.",
    "Washington had urged Tokyo to keep a united front with the G7 against Moscow over Ukraine, and officials "
    "in both capitals said the talks on the disputed islands and on energy would continue next month.",
    "Talks went on.",
    "The two leaders agreed to meet again.",
] * 5


@pytest.mark.parametrize("backend", ["torch", "torch-bf16"])
@pytest.mark.parametrize("workers", [1, 2])
def test_packed_rows_score_like_padded_rows(tiny_artifact, backend, workers):
    from stancekit.serve.predictor import PackedBatch

    packed = Predictor(tiny_artifact, backend=backend, threads=2, workers=workers)
    padded = Predictor(tiny_artifact, backend=backend, threads=2, workers=workers, packing=False)
    assert packed.packing and not padded.packing
    plan = packed.plan([len(x) for x in packed.encode(ARTICLE).ids])
    assert plan and all(isinstance(b, PackedBatch) for b in plan) and len(plan) >= workers
    a, b = packed.predict_proba(ARTICLE), padded.predict_proba(ARTICLE)
    for h in a:
        np.testing.assert_allclose(a[h], b[h], atol=1e-5 if backend == "torch" else 2e-2)
        assert (a[h].argmax(1) == b[h].argmax(1)).mean() >= 0.95
    assert packed.stats["padded_tokens"] < 0.8 * padded.stats["padded_tokens"]


def test_length_sorted_bulk_input_stays_padded(tiny_artifact):
    pred = Predictor(tiny_artifact)
    lengths = [12] * 200 + [13] * 200  # sorting leaves almost no padding: packing would not pay
    assert all(isinstance(b, np.ndarray) for b in pred.plan(lengths))


def test_packing_is_refused_for_encoders_that_offset_positions():
    import torch
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    from stancekit.model.heads import MultiHeadClassifier
    from stancekit.serve.engines import _packing_agrees

    small = {"vocab_size": 64, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 32, "max_position_embeddings": 40}
    torch.manual_seed(0)
    bert = MultiHeadClassifier(BertModel(BertConfig(**small)), {"stance": 3}, dropout=0.0).eval()
    # RoBERTa numbers positions from padding_idx + 1, so positions restarting at 0 change its output
    roberta = MultiHeadClassifier(RobertaModel(RobertaConfig(**small)), {"stance": 3}, dropout=0.0).eval()
    assert _packing_agrees(bert, torch)
    assert not _packing_agrees(roberta, torch)
