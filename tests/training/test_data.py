"""Training data checks: every bad row named with file and line before training."""

from __future__ import annotations

import pytest
from conftest import SENTIMENT, STANCE, tiny_config_dict, write_jsonl

from stancekit.config import config_from_dict
from stancekit.errors import DataError
from stancekit.training.data import IGNORE, load_labelled


@pytest.fixture
def cfg(tiny_encoder_dir, tiny_data):
    return config_from_dict(tiny_config_dict(tiny_encoder_dir, tiny_data))


def test_load_labelled_reads_labels_and_masks_missing(tmp_path, cfg):
    path = write_jsonl(tmp_path / "ok.jsonl", [
        {"text": "a b", "stance": "neutral", "sentiment": "positive", "source": "x"},
        {"text": "c d", "stance": None, "sentiment": "negative", "source": "y"},
    ])
    data = load_labelled(path, cfg)
    assert data.labels["stance"].tolist() == [STANCE.index("neutral"), IGNORE]
    assert data.labels["sentiment"].tolist() == [SENTIMENT.index("positive"), SENTIMENT.index("negative")]
    assert data.meta["source"] == ["x", "y"]


def test_load_labelled_names_file_line_and_problem(tmp_path, cfg):
    path = write_jsonl(tmp_path / "bad.jsonl", [
        {"text": "fine", "stance": "neutral", "sentiment": "neutral"},
        {"text": "x", "stance": "pro-us", "sentiment": "neutral"},
        {"text": "   ", "stance": "neutral", "sentiment": "neutral"},
        {"stance": "neutral", "sentiment": "neutral", "text": None},
        {"text": "no labels at all"},
    ])
    with pytest.raises(DataError) as err:
        load_labelled(path, cfg)
    msg = str(err.value)
    assert "bad.jsonl line 2: stance label 'pro-us' is not one of pro_us_alignment" in msg
    assert "heads.stance.labels" in msg
    assert "line 3: field 'text' is empty" in msg
    assert "line 4: field 'text' is empty or not a string" in msg
    assert "line 5: no label for any head" in msg


def test_load_labelled_undecodable_line_named(tmp_path, cfg):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "a", "stance": "neutral", "sentiment": "neutral"}\n{"text": oops}\n')
    with pytest.raises(DataError, match="broken.jsonl line 2: not a valid UTF-8 JSON object"):
        load_labelled(path, cfg)


def test_load_labelled_csv_line_numbers_count_the_header(tmp_path, cfg):
    path = tmp_path / "rows.csv"
    path.write_text("text,stance,sentiment\nok,neutral,neutral\nbad,sideways,neutral\n")
    with pytest.raises(DataError, match="rows.csv line 3: stance label 'sideways'"):
        load_labelled(path, cfg)


def test_load_labelled_missing_text_column_named(tmp_path, cfg):
    path = write_jsonl(tmp_path / "nocol.jsonl", [{"sentence": "a", "stance": "neutral", "sentiment": "neutral"}])
    with pytest.raises(DataError, match="missing field 'text'"):
        load_labelled(path, cfg)


def test_train_refuses_bad_rows_before_training(tmp_path, tiny_encoder_dir, tiny_data):
    from stancekit.training.train import train

    bad = write_jsonl(tmp_path / "train.jsonl", [{"text": "x", "stance": "maybe", "sentiment": "neutral"}])
    cfg = config_from_dict(tiny_config_dict(tiny_encoder_dir, dict(tiny_data, train=bad)))
    with pytest.raises(DataError, match="train.jsonl line 1"):
        train(cfg, tmp_path / "never")
    assert not (tmp_path / "never").exists()
