"""Evaluation numbers (scores, intervals, calibration, slices, examples, articles) and the written reports."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import STANCE, make_rows, write_jsonl
from typer.testing import CliRunner

from stancekit.cli import app
from stancekit.errors import DataError
from stancekit.serve.evaluate import (
    article_report,
    artifact_config,
    bootstrap_scores,
    confusion_counts,
    evaluate,
    load_eval_data,
    scores_from_confusion,
)
from stancekit.serve.predictor import Predictor
from stancekit.serve.report_html import fmt_ci
from stancekit.training.data import IGNORE, LabelledData
from stancekit.training.metrics import head_metrics


def _mixed_rows() -> list[dict]:
    """Template rows with dates, countries, some wrong stance labels and some missing sentiment labels."""
    rows = make_rows(48, 7, "gamma") + make_rows(24, 8, "delta")
    for i, r in enumerate(rows):
        r["date"] = f"{2014 + min(i % 4, 2)}-05-{1 + i % 9:02d}"  # 2016 is the most frequent year
        r["country"] = ["Japan", "India", "Turkey", "Brazil"][i % 4]
        if i % 5 == 0:
            r["stance"] = STANCE[(STANCE.index(r["stance"]) + 1) % 3]  # a label the model will get "wrong"
        if i % 6 == 0:
            del r["sentiment"]
    return rows


@pytest.fixture(scope="module")
def mixed_file(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("eval_data") / "mixed.jsonl", _mixed_rows())


@pytest.fixture(scope="module")
def mixed_eval(tiny_artifact, mixed_file, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("eval_mixed")
    return evaluate(tiny_artifact, mixed_file, out, samples=300, seed=5), out


@pytest.fixture(scope="module")
def test_split_eval(tiny_artifact, tiny_data, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("eval_test_split")
    return evaluate(tiny_artifact, tiny_data["test"], out, samples=200), out


@pytest.fixture(scope="module")
def mixed_probs(tiny_artifact, mixed_file) -> tuple[LabelledData, dict[str, np.ndarray]]:
    predictor = Predictor(tiny_artifact)
    data = load_eval_data(mixed_file, artifact_config(predictor.artifact.path, predictor.manifest))
    return data, predictor.predict_proba(data.texts)


def test_evaluate_writes_report_files_and_metrics_json_equal_to_the_return_value(mixed_eval):
    metrics, out = mixed_eval
    assert {p.name for p in out.iterdir()} == {"report.html", "report.md", "metrics.json"}
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))


def test_point_scores_equal_training_metrics_on_the_same_predictions(mixed_eval, mixed_probs, tiny_artifact):
    metrics, _ = mixed_eval
    data, probs = mixed_probs
    labels = Predictor(tiny_artifact).heads
    for h, names in labels.items():
        expected = head_metrics(data.labels[h], probs[h].argmax(1), names)
        got = metrics["heads"][h]
        assert got["n"] == expected["n"]
        assert got["macro_f1"]["value"] == pytest.approx(expected["macro_f1"])
        assert got["accuracy"]["value"] == pytest.approx(expected["accuracy"])
        for lab in names:
            assert got["per_class"][lab]["f1"]["value"] == pytest.approx(expected["per_class"][lab]["f1"])
            assert got["per_class"][lab]["support"] == expected["per_class"][lab]["support"]


def test_scores_from_confusion_agree_with_scikit_learn(global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    for k, n in ((3, 50), (4, 7), (3, 2)):
        yt, yp = rng.integers(0, k, n), rng.integers(0, k, n)
        ours = scores_from_confusion(confusion_counts(yt, yp, k))
        ref = head_metrics(yt, yp, [str(i) for i in range(k)])
        assert ours["macro_f1"] == pytest.approx(ref["macro_f1"])
        assert ours["accuracy"] == pytest.approx(ref["accuracy"])
        for j in range(k):
            for m in ("precision", "recall", "f1"):
                assert ours[m][j] == pytest.approx(ref["per_class"][str(j)][m])


def test_bootstrap_is_seeded_and_intervals_bracket_the_estimate(mixed_eval, global_random_seed):
    yt = np.array([0, 1, 2, 0, 1, 2, 0, 0, 1, 2])
    yp = np.array([0, 1, 1, 0, 2, 2, 0, 1, 1, 2])
    a = bootstrap_scores(yt, yp, 3, 200, global_random_seed)
    b = bootstrap_scores(yt, yp, 3, 200, global_random_seed)
    assert np.array_equal(a["macro_f1"], b["macro_f1"]) and a["macro_f1"].shape == (200,)
    assert a["macro_f1"].std() > 0
    stance = mixed_eval[0]["heads"]["stance"]
    for v in [stance["macro_f1"], stance["accuracy"]] + [pc["f1"] for pc in stance["per_class"].values()]:
        assert v["ci_low"] <= v["value"] <= v["ci_high"]
    assert stance["macro_f1"]["ci_low"] < stance["macro_f1"]["ci_high"]  # wrong labels make it uncertain


def test_rows_without_a_head_label_count_only_for_the_other_heads(mixed_eval):
    rows = _mixed_rows()
    heads = mixed_eval[0]["heads"]
    assert heads["stance"]["n"] == len(rows)
    assert heads["sentiment"]["n"] == sum("sentiment" in r for r in rows) < len(rows)
    assert sum(map(sum, heads["sentiment"]["confusion"]["counts"])) == heads["sentiment"]["n"]


def test_confusion_rows_are_gold_and_normalised_rows_sum_to_one(mixed_eval, mixed_probs):
    data = mixed_probs[0]
    cm = mixed_eval[0]["heads"]["stance"]["confusion"]
    gold_counts = np.bincount(data.labels["stance"], minlength=3)
    assert [sum(row) for row in cm["counts"]] == gold_counts.tolist()
    assert [sum(row) for row in cm["normalized"]] == pytest.approx([1.0, 1.0, 1.0])


def test_reliability_bins_reproduce_the_ece(mixed_eval):
    head = mixed_eval[0]["heads"]["stance"]
    bins = [b for b in head["reliability"] if b["n"]]
    total = sum(b["n"] for b in bins)
    assert total == head["n"]
    assert sum(b["n"] / total * abs(b["accuracy"] - b["confidence"]) for b in bins) == pytest.approx(head["ece"])


def test_csv_and_parquet_read_like_jsonl(tiny_artifact, mixed_file, tmp_path):
    import pandas as pd

    predictor = Predictor(tiny_artifact)
    config = artifact_config(predictor.artifact.path, predictor.manifest)
    frame = pd.DataFrame(_mixed_rows())
    frame.to_csv(tmp_path / "mixed.csv", index=False)
    frame.to_parquet(tmp_path / "mixed.parquet", index=False)
    reference = load_eval_data(mixed_file, config)
    for name in ("mixed.csv", "mixed.parquet"):
        other = load_eval_data(tmp_path / name, config)
        assert other.texts == reference.texts
        for h in reference.labels:
            assert np.array_equal(other.labels[h], reference.labels[h]), (name, h)
        assert [str(d) for d in other.meta["doc_id"]] == reference.meta["doc_id"]


def test_unknown_label_is_a_data_error_naming_file_line_and_value(tiny_artifact, tmp_path):
    rows = make_rows(4, 1)
    rows[2]["stance"] = "pro-us"
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=r"bad\.jsonl line 3: stance label 'pro-us' is not one of"):
        evaluate(tiny_artifact, path, tmp_path / "out")


def test_slices_by_source_country_and_year_count_every_row(mixed_eval):
    slices = mixed_eval[0]["slices"]
    assert list(slices) == ["source", "country", "year"]  # no 'origin' column in this data
    for column in slices.values():
        assert sum(v["n"] for v in column["values"]) == len(_mixed_rows())
    assert [(v["value"], v["n"]) for v in slices["year"]["values"]] == [("2014", 18), ("2015", 18), ("2016", 36)]
    gamma = next(v for v in slices["source"]["values"] if v["value"] == "gamma")
    assert gamma["n"] == 48 and gamma["heads"]["stance"]["n"] == 48


def test_examples_are_confident_errors_and_unsure_correct_predictions(mixed_eval):
    ex = mixed_eval[0]["heads"]["stance"]["examples"]
    errors, unsure = ex["confident_errors"], ex["uncertain_correct"]
    assert errors and unsure
    assert all(e["gold"] != e["predicted"] and e["text"] for e in errors)
    assert all(e["gold"] == e["predicted"] for e in unsure)
    assert [e["confidence"] for e in errors] == sorted((e["confidence"] for e in errors), reverse=True)
    assert [e["confidence"] for e in unsure] == sorted(e["confidence"] for e in unsure)
    assert all(e["gold_probability"] <= e["confidence"] for e in errors)


def _hand_data(doc_ids: list[str], stance: list[int]) -> LabelledData:
    n = len(doc_ids)
    return LabelledData(Path("hand.jsonl"), ["x"] * n, None, {"stance": np.array(stance)}, {"doc_id": doc_ids})


def test_article_report_shares_lean_and_rank_correlation():
    # labels: 0 pro_us (+1), 1 pro_russia (-1), 2 neutral
    docs = ["a", "a", "b", "b", "c", "c", "d"]
    gold = [0, 0, 0, 1, 1, 1, 2]
    probs = np.array([
        [0.9, 0.05, 0.05], [0.6, 0.2, 0.2],   # a: predicted lean 0.625
        [0.3, 0.3, 0.4], [0.3, 0.5, 0.2],     # b: -0.1
        [0.1, 0.8, 0.1], [0.2, 0.7, 0.1],     # c: -0.6
        [0.1, 0.1, 0.8],                      # d: one sentence, left out of rho
    ])
    rep = article_report(_hand_data(docs, gold), probs, STANCE, "stance", STANCE[0], STANCE[1], min_sentences=2)
    by_doc = {r["doc_id"]: r for r in rep["articles"]}
    assert by_doc["b"]["gold_shares"] == {STANCE[0]: 0.5, STANCE[1]: 0.5, STANCE[2]: 0.0}
    assert by_doc["b"]["predicted_shares"] == {STANCE[0]: 0.0, STANCE[1]: 0.5, STANCE[2]: 0.5}
    assert [by_doc[d]["gold_lean"] for d in "abc"] == [1.0, 0.0, -1.0]
    assert by_doc["a"]["predicted_lean"] == pytest.approx(0.625)
    assert (rep["n_articles"], rep["n_used"]) == (4, 3)
    assert rep["spearman_lean"] == pytest.approx(1.0)
    flipped = article_report(_hand_data(docs, [1, 1, 0, 1, 0, 0, 2]), probs, STANCE, "stance", STANCE[0], STANCE[1], 2)
    assert flipped["spearman_lean"] == pytest.approx(-1.0)


def test_article_report_skips_rows_without_the_head_label_and_needs_three_articles():
    docs = ["a", "a", "b", "b"]
    rep = article_report(
        _hand_data(docs, [0, IGNORE, 1, 1]), np.full((4, 3), 1 / 3), STANCE, "stance", STANCE[0], STANCE[1], 1
    )
    assert [r["n"] for r in sorted(rep["articles"], key=lambda r: r["doc_id"])] == [1, 2]
    assert rep["spearman_lean"] is None


def test_article_level_section_uses_doc_id(mixed_eval):
    arts = mixed_eval[0]["articles"]
    assert arts["n_articles"] == len({r["doc_id"] for r in _mixed_rows()})
    assert -1.0 <= arts["spearman_lean"] <= 1.0
    for a in arts["articles"]:
        assert sum(a["gold_shares"].values()) == pytest.approx(1.0)
        assert sum(a["predicted_shares"].values()) == pytest.approx(1.0)


def test_baselines_come_from_the_artifact_split_that_is_this_file(test_split_eval, tiny_artifact):
    metrics, _ = test_split_eval
    b = metrics["baselines"]
    assert (b["split"], b["match"]) == ("test", "same file")
    stored = json.loads((tiny_artifact / "metrics.json").read_text())["splits"]["test"]
    assert {"majority", "tfidf_lr", "model (artifact metrics.json)"} <= set(b["systems"])
    assert b["systems"]["tfidf_lr"]["stance"]["macro_f1"] == stored["tfidf_lr"]["stance"]["macro_f1"]
    # the stored model score was computed at training time on the same rows: this evaluation reproduces it
    for h in ("stance", "sentiment"):
        assert b["systems"]["model (this evaluation)"][h]["macro_f1"] == pytest.approx(
            stored["model"]["heads"][h]["macro_f1"]
        )


def test_report_html_is_one_self_contained_file(mixed_eval):
    html = (mixed_eval[1] / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script" not in html and 'rel="stylesheet"' not in html and "<style>" in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 2 * 2 + 2  # confusion + reliability per head, baselines, article scatter
    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    for anchor in ("summary", "head-stance", "head-sentiment", "baselines", "slices", "examples", "articles", "method"):
        assert f'id="{anchor}"' in html and f'href="#{anchor}"' in html


def test_report_md_and_html_show_the_same_numbers(mixed_eval):
    metrics, out = mixed_eval
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    for h, m in metrics["heads"].items():
        assert f"| {h} | {m['n']} | {fmt_ci(m['macro_f1'])} | {fmt_ci(m['accuracy'])} |" in md
        assert f"{m['macro_f1']['value']:.3f}" in html and f"{m['macro_f1']['ci_low']:.3f}" in html
    assert f"| lean score | {metrics['articles']['spearman_lean']:.3f} |" in md
    assert metrics["data"]["path"] in md and metrics["artifact"]["name"] in md


def test_cli_evaluate_prints_a_summary_table_and_writes_the_reports(tiny_artifact, mixed_file, tmp_path):
    result = CliRunner().invoke(app, [
        "evaluate", "--artifact", str(tiny_artifact), "--data", str(mixed_file), "--out", str(tmp_path / "r"),
        "--bootstrap", "100",
    ])
    assert result.exit_code == 0, result.output
    assert re.search(r"stance\s+72\s+\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", result.output)
    assert (tmp_path / "r" / "report.html").is_file() and (tmp_path / "r" / "metrics.json").is_file()


def test_cli_evaluate_missing_data_is_one_line_error(tiny_artifact, tmp_path):
    result = CliRunner().invoke(app, ["evaluate", "--artifact", str(tiny_artifact), "--data", str(tmp_path / "no.jsonl")])
    assert result.exit_code == 2
    assert "no.jsonl: file not found" in result.output and "Traceback" not in result.output
