"""Ray Data engine: same output as the local engine (rejects included) on a local 2-CPU Ray."""

from __future__ import annotations

import json

import pytest
from test_jobs import write_articles

from stancekit.errors import ConfigError
from stancekit.serve.jobs import JobSpec, read_output, run_job
from stancekit.serve.ray_jobs import run_ray_job


def _sorted_rows(out, table):
    rows = read_output(out, table).to_pylist()
    return sorted(rows, key=lambda r: (r.get("record", 0), r["id"], r.get("sentence_index", 0)))


def test_ray_engine_output_equals_the_local_engine(tiny_artifact, tmp_path):
    path = tmp_path / "news.jsonl"
    write_articles(path, 45, seed=3)
    # One thread per model on both sides: thread count can change a probability's last float bit.
    local = run_job(JobSpec(path, tmp_path / "local", tiny_artifact, chunk_size=6, max_chars=500, threads=1), quiet=True)
    ray_spec = JobSpec(path, tmp_path / "ray", tiny_artifact, chunk_size=6, max_chars=500, threads=1, engine="ray")
    summary = run_ray_job(ray_spec, quiet=True, num_cpus=2)
    for table in ("articles", "sentences"):
        ray_rows = _sorted_rows(tmp_path / "ray", table)
        assert ray_rows == _sorted_rows(tmp_path / "local", table)
    assert len(_sorted_rows(tmp_path / "ray", "articles")) == local.scored == 45
    assert (tmp_path / "ray" / "rejects.jsonl").read_bytes() == (tmp_path / "local" / "rejects.jsonl").read_bytes()
    keys = ("read", "scored", "rejected", "sentences", "rejected_by_kind", "blank_lines", "chunks")
    assert {k: getattr(summary, k) for k in keys} == {k: getattr(local, k) for k in keys}
    on_disk = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert on_disk["engine"] == "ray" and on_disk["read"] == on_disk["scored"] + on_disk["rejected"]
    assert not (tmp_path / "ray" / "_staging").exists()


def test_ray_engine_refuses_resume_and_jsonl_before_starting_ray(tiny_artifact, tmp_path):
    path = tmp_path / "news.jsonl"
    path.write_text('{"id": "a", "text": "Japan signed a gas deal with Russia."}\n')
    spec = JobSpec(path, tmp_path / "out", tiny_artifact, engine="ray")
    with pytest.raises(ConfigError, match="--resume works with --engine local only"):
        run_ray_job(spec, resume=True)
    with pytest.raises(ConfigError, match="writes Parquet only"):
        run_ray_job(JobSpec(path, tmp_path / "out", tiny_artifact, engine="ray", format="jsonl"))
    assert not (tmp_path / "out").exists()
