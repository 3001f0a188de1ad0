"""The `stancekit` command line: commands run, errors are one line with exit code 2."""

from __future__ import annotations

import json

from conftest import make_rows, write_jsonl
from typer.testing import CliRunner

from stancekit.cli import app

runner = CliRunner()


def test_cli_classify_prints_labels(tiny_artifact):
    result = runner.invoke(app, ["classify", "Japan signed a gas deal with Russia.", "--artifact", str(tiny_artifact)])
    assert result.exit_code == 0, result.output
    assert "stance=" in result.output and "sentiment=" in result.output


def test_cli_classify_json(tiny_artifact):
    result = runner.invoke(app, ["classify", "A sentence.", "--artifact", str(tiny_artifact), "--json"])
    assert result.exit_code == 0
    payload = json.loads(result.output)
    assert set(payload[0]["heads"]) == {"stance", "sentiment"}


def test_cli_profile_writes_json_per_article(tiny_artifact, tmp_path, sample_article):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text(sample_article)
    (tmp_path / "in" / "b.txt").write_text("Hungary signed a gas deal with Russia. Poland objected.")
    result = runner.invoke(app, ["profile", str(tmp_path / "in"), "--artifact", str(tiny_artifact), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    prof = json.loads((tmp_path / "out" / "a.profile.json").read_text())
    assert prof["n_sentences"] == 24 and prof["n_dropped"] == 7
    assert len(prof["sentences"]) == 24
    assert "lean" in result.output
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| a | 24 | 7 |" in report and "| b |" in report
    assert "<html" in (tmp_path / "out" / "a.html").read_text().lower()


def test_cli_profile_missing_article_is_one_line_error(tiny_artifact, tmp_path):
    result = runner.invoke(app, ["profile", str(tmp_path / "nope.txt"), "--artifact", str(tiny_artifact)])
    assert result.exit_code == 2
    assert "nope.txt: no such file or directory" in result.output


def test_cli_missing_artifact_is_one_line_error(tmp_path):
    result = runner.invoke(app, ["classify", "x", "--artifact", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "error:" in result.output and "Traceback" not in result.output


def test_cli_train_bad_override_is_one_line_error():
    result = runner.invoke(app, ["train", "--config", "configs/default.yaml", "--set", "training.epochs=-1"])
    assert result.exit_code == 2
    assert "training.epochs" in result.output


def test_cli_train_tiny(tmp_path, tiny_encoder_dir, tiny_data):
    out = tmp_path / "art"
    result = runner.invoke(app, [
        "train", "--config", "configs/default.yaml", "--out", str(out),
        "--set", f"model.base={tiny_encoder_dir}", "--set", "model.max_length=32",
        "--set", f"data.train={tiny_data['train']}", "--set", f"data.dev={tiny_data['dev']}",
        "--set", f"data.test={tiny_data['test']}", "--set", "training.epochs=1", "--set", "training.baselines=false",
    ])
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").is_file()
    assert "macro-F1" in result.output


def test_cli_data_validate_reports_problems(tmp_path):
    rows = make_rows(9, 1)
    for split in ("train", "dev", "test"):
        part = [dict(r, split=split, date="", country="Japan", origin="real", id=f"{split}-{i}")
                for i, r in enumerate(rows)]
        write_jsonl(tmp_path / f"{split}.jsonl", part)
    result = runner.invoke(app, ["data", "validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "duplicate text" in result.output and "document leakage" in result.output
