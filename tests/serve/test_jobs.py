"""Batch scoring jobs: readers, rejects, outputs, refusal to clobber, crash-safe commits and resume."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from stancekit.cli import app
from stancekit.errors import ConfigError, DataError
from stancekit.serve.jobs import JOB_MANIFEST, JobDir, JobSpec, read_output, run_job

_SENTENCES = [
    "Japan joined the new sanctions against Moscow.",
    "India signed a gas deal with Russia.",
    "The meeting in Berlin took place on Tuesday.",
    "Leaders of Turkey and Russia agreed to expand trade and dialogue.",
    "Officials in Hungary backed the united front with Washington.",
    "Brazil declined to join the sanctions and kept talking to Moscow.",
]
# (line bytes, expected reject kind or None when the record is valid)
_BAD_LINES = [
    (b'{"id": "no-text", "source": "x"}', "missing_text"),
    (b'{"id": "null-text", "text": null}', "missing_text"),
    (b'{"id": "int-text", "text": 42}', "text_not_string"),
    (b'{"id": "list-text", "text": ["a", "b"]}', "text_not_string"),
    (b'{"id": "empty", "text": ""}', "empty_text"),
    (b'{"id": "blank", "text": "   \\n  "}', "empty_text"),
    (b'{"id": "huge", "text": "' + b"Russia. " * 100 + b'"}', "text_too_long"),
    (b'{"id": "latin1", "text": "Caf\xe9 talks in Moscow."}', "invalid_utf8"),
    (b'{"id": "surrogate", "text": "Talks \\ud800 in Moscow."}', "invalid_utf8"),
    (b'{"id": "broken", "text": "unterminated', "invalid_json"),
    (b'["an", "array"]', "not_an_object"),
    (b'{"text": "No id here."}', "missing_id"),
    (b'{"id": 1.5, "text": "A float id."}', "bad_id"),
    (b'{"id": "art-0", "text": "A second article with the first one\'s id."}', "duplicate_id"),
]
MAX_CHARS = 500


def _article(rng: random.Random, n: int | None = None) -> str:
    return " ".join(rng.choice(_SENTENCES) for _ in range(n or rng.randint(1, 5)))


def write_articles(path: Path, n_good: int, seed: int = 0, bad_every: int = 3) -> dict:
    """JSONL with n_good valid articles and every kind of bad record between them; returns the expectations."""
    rng = random.Random(seed)
    lines, expected_rejects, valid_ids = [], [], []
    bad = list(_BAD_LINES)
    for i in range(n_good):
        lines.append(json.dumps({"id": f"art-{i}", "text": _article(rng), "source": f"s{i % 3}", "rank": i}).encode())
        valid_ids.append(f"art-{i}")
        if i % bad_every == bad_every - 1 and bad:
            line, kind = bad.pop(0)
            lines.append(line)
            expected_rejects.append((sum(1 for x in lines if x.strip()), kind))
        if i == 2:
            lines.append(b"   ")  # a blank line is not a record
    assert not bad, "increase n_good so every bad kind is written"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return {"valid_ids": valid_ids, "rejects": expected_rejects, "n_records": len(lines) - 1}


def _spec(inp: Path, out: Path, artifact: Path, **kw) -> JobSpec:
    return JobSpec(inp, out, artifact, max_chars=kw.pop("max_chars", MAX_CHARS), **kw)


def _rejects(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def service(tiny_artifact):
    from stancekit.serve.service import StanceService

    return StanceService.from_artifact(tiny_artifact)


@pytest.fixture(scope="module")
def bad_file(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("jobs_in") / "news.jsonl"
    return path, write_articles(path, 45)


def test_bad_records_of_every_kind_are_rejected_with_record_id_and_reason(bad_file, tiny_artifact, service, tmp_path):
    path, expected = bad_file
    summary = run_job(_spec(path, tmp_path / "out", tiny_artifact, chunk_size=7), quiet=True, service=service)
    rejects = _rejects(tmp_path / "out")
    assert [(r["record"], r["kind"]) for r in rejects] == expected["rejects"]
    assert {r["kind"] for r in rejects} == {k for _, k in _BAD_LINES}
    for r in rejects:
        assert r["reason"].startswith(f"news.jsonl record {r['record']}: ")
        assert r["line"] - r["record"] in (0, 1)  # the blank line counts as a line, not as a record
    by_kind = {r["kind"]: r for r in rejects}
    assert [r["id"] for r in rejects if r["kind"] in ("invalid_json", "not_an_object", "missing_id")] == [None] * 3
    assert by_kind["duplicate_id"]["id"] == "art-0" and "already scored at record 1" in by_kind["duplicate_id"]["reason"]
    assert "over the limit of 500 (--max-chars)" in by_kind["text_too_long"]["reason"]
    # counts add up, and every valid id is scored exactly once
    assert summary.read == expected["n_records"] == summary.scored + summary.rejected
    assert summary.rejected == len(_BAD_LINES) and summary.blank_lines == 1
    assert sum(summary.rejected_by_kind.values()) == summary.rejected
    ids = read_output(tmp_path / "out", "articles").column("id").to_pylist()
    assert ids == expected["valid_ids"]
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (on_disk["read"], on_disk["scored"], on_disk["rejected"]) == (summary.read, summary.scored, summary.rejected)


def test_invalid_utf8_reject_keeps_the_id_from_the_rest_of_the_line(bad_file, tiny_artifact, service, tmp_path):
    path, _ = bad_file
    run_job(_spec(path, tmp_path / "out", tiny_artifact), quiet=True, service=service)
    utf8 = [r for r in _rejects(tmp_path / "out") if r["kind"] == "invalid_utf8"]
    assert [r["id"] for r in utf8] == ["latin1", "surrogate"]
    assert "b'\\xe9'" in utf8[0]["reason"]


def test_article_rows_hold_the_python_api_profile_and_metadata(tiny_artifact, service, tmp_path):
    rng = random.Random(1)
    rows = [{"id": f"a{i}", "text": _article(rng, 4), "source": "wire", "tags": ["x", i]} for i in range(6)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_job(_spec(tmp_path / "in.jsonl", tmp_path / "out", tiny_artifact, chunk_size=6), quiet=True, service=service)
    arts = read_output(tmp_path / "out", "articles").to_pylist()
    api = service.profile_many([r["text"] for r in rows], [r["id"] for r in rows])
    assert [a["profile"] for a in arts] == [p.model_dump_json() for p in api]
    assert [json.loads(a["metadata"]) for a in arts] == [{"source": "wire", "tags": ["x", i]} for i in range(6)]
    first = api[0]
    assert arts[0]["n_sentences"] == first.n_sentences and arts[0]["lean"] == first.lean.score
    assert arts[0]["stance_neutral_count"] == first.heads["stance"].labels["neutral"].count
    sents = [s for s in read_output(tmp_path / "out", "sentences").to_pylist() if s["id"] == "a0"]
    full = service.profile_many([r["text"] for r in rows], [r["id"] for r in rows], include_sentences=True)[0]
    assert [s["sentence_index"] for s in sents] == list(range(first.n_sentences))
    assert [(s["text"], s["start"], s["end"]) for s in sents] == [(x.text, x.start, x.end) for x in full.sentences]
    assert [s["stance_p_neutral"] for s in sents] == [x.heads["stance"].probabilities["neutral"] for x in full.sentences]
    assert [s["sentiment_label"] for s in sents] == [x.label("sentiment") for x in full.sentences]


def test_jsonl_output_has_the_same_rows_with_json_columns_embedded(bad_file, tiny_artifact, service, tmp_path):
    path, _ = bad_file
    run_job(_spec(path, tmp_path / "pq", tiny_artifact, chunk_size=9), quiet=True, service=service)
    run_job(_spec(path, tmp_path / "js", tiny_artifact, chunk_size=9, format="jsonl"), quiet=True, service=service)
    for table in ("articles", "sentences"):
        as_parquet = read_output(tmp_path / "pq", table).to_pylist()
        as_jsonl = read_output(tmp_path / "js", table).to_pylist()
        if table == "articles":
            for row in as_parquet:
                row["metadata"], row["profile"] = json.loads(row["metadata"]), json.loads(row["profile"])
        assert as_jsonl == as_parquet
    assert (tmp_path / "pq" / "rejects.jsonl").read_bytes() == (tmp_path / "js" / "rejects.jsonl").read_bytes()


def test_csv_and_parquet_inputs_score_like_jsonl_and_reject_per_record(tiny_artifact, service, tmp_path):
    rng = random.Random(2)
    rows = [{"doc": f"d{i}", "body": _article(rng), "outlet": f"o{i}"} for i in range(8)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with (tmp_path / "in.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["doc", "body", "outlet"])
        w.writerows([r["doc"], r["body"], r["outlet"]] for r in rows[:4])
        w.writerow(["d-empty", "", "o"])
        w.writerow(["d-short"])
        w.writerows([r["doc"], r["body"], r["outlet"]] for r in rows[4:])
    with (tmp_path / "in.csv").open("ab") as f:
        f.write(b'd-latin1,"Caf\xe9 in Moscow.",o\n')
    pq.write_table(pa.Table.from_pylist(rows + [{"doc": "d-null", "body": None, "outlet": "o"}]), tmp_path / "in.parquet")
    results = {}
    for suffix in ("jsonl", "csv", "parquet"):
        spec = _spec(tmp_path / f"in.{suffix}", tmp_path / suffix, tiny_artifact, id_field="doc", text_field="body")
        summary = run_job(spec, quiet=True, service=service)
        results[suffix] = read_output(tmp_path / suffix, "articles").drop_columns(["record"]).to_pylist()
        assert summary.scored == 8 and summary.read == summary.scored + summary.rejected
    assert results["csv"] == results["jsonl"] == results["parquet"]
    assert [(r["record"], r["id"], r["kind"]) for r in _rejects(tmp_path / "csv")] == [
        (5, "d-empty", "empty_text"), (6, "d-short", "missing_text"), (11, "d-latin1", "invalid_utf8")]
    assert [(r["record"], r["id"], r["kind"]) for r in _rejects(tmp_path / "parquet")] == [(9, "d-null", "missing_text")]


def test_missing_column_or_unknown_file_type_is_a_data_error(tiny_artifact, tmp_path):
    (tmp_path / "in.csv").write_text("id,body\n1,Some text.\n")
    with pytest.raises(DataError, match=r"no column 'text' \(--text-field\); columns are id, body"):
        run_job(_spec(tmp_path / "in.csv", tmp_path / "out", tiny_artifact), quiet=True)
    (tmp_path / "in.txt").write_text("x")
    with pytest.raises(DataError, match="unsupported file type '.txt'"):
        run_job(_spec(tmp_path / "in.txt", tmp_path / "out2", tiny_artifact), quiet=True)
    with pytest.raises(ConfigError, match="--format must be one of parquet, jsonl, got 'xml'"):
        _spec(tmp_path / "in.csv", tmp_path / "out3", tiny_artifact, format="xml")


def test_finished_job_is_not_rerun_without_resume_or_overwrite(bad_file, tiny_artifact, service, tmp_path):
    path, _ = bad_file
    spec = _spec(path, tmp_path / "out", tiny_artifact)
    first = run_job(spec, quiet=True, service=service)
    with pytest.raises(DataError, match="already holds a finished job .*pass --overwrite"):
        run_job(spec, quiet=True, service=service)
    again = run_job(spec, resume=True, quiet=True, service=service)  # nothing left to do
    assert (again.read, again.scored, again.rejected) == (first.read, first.scored, first.rejected)
    (tmp_path / "out" / "articles" / "part-000000.parquet").unlink()
    redone = run_job(spec, overwrite=True, quiet=True, service=service)
    assert redone.scored == first.scored
    assert (tmp_path / "out" / "articles" / "part-000000.parquet").is_file()
    result = CliRunner().invoke(app, ["score", str(path), "--out", str(tmp_path / "out"), "--artifact", str(tiny_artifact)])
    assert result.exit_code == 2 and "already holds a finished job" in result.output


def test_unfinished_job_needs_resume_and_the_same_options(bad_file, tiny_artifact, service, tmp_path):
    path, _ = bad_file
    JobDir(tmp_path / "out").open(_spec(path, tmp_path / "out", tiny_artifact).params(), resume=False, overwrite=False)
    with pytest.raises(DataError, match="unfinished job .*pass --resume"):
        run_job(_spec(path, tmp_path / "out", tiny_artifact), quiet=True, service=service)
    with pytest.raises(DataError, match="chunk_size was 256, now 8"):
        run_job(_spec(path, tmp_path / "out", tiny_artifact, chunk_size=8), resume=True, quiet=True, service=service)
    with pytest.raises(ConfigError, match="exclude each other"):
        run_job(_spec(path, tmp_path / "out", tiny_artifact), resume=True, overwrite=True, quiet=True)
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "rejects.jsonl").write_text("")
    with pytest.raises(DataError, match="no readable job.json"):
        run_job(_spec(path, tmp_path / "stray", tiny_artifact), quiet=True, service=service)


def test_crash_between_part_files_and_manifest_resumes_to_the_same_output(
    bad_file, tiny_artifact, service, tmp_path, monkeypatch
):
    path, _ = bad_file
    run_job(_spec(path, tmp_path / "ref", tiny_artifact, chunk_size=5), quiet=True, service=service)
    record = JobDir.record

    def crash_on_chunk_3(self, chunk, *args):
        if chunk.index == 3:
            raise KeyboardInterrupt  # after chunk 3's parts and rejects are written, before its manifest commit
        return record(self, chunk, *args)

    monkeypatch.setattr(JobDir, "record", crash_on_chunk_3)
    spec = _spec(path, tmp_path / "out", tiny_artifact, chunk_size=5)
    with pytest.raises(KeyboardInterrupt):
        run_job(spec, quiet=True, service=service)
    assert (tmp_path / "out" / "articles" / "part-000003.parquet").is_file()
    assert json.loads((tmp_path / "out" / JOB_MANIFEST).read_text())["next_chunk"] == 3
    monkeypatch.setattr(JobDir, "record", record)
    summary = run_job(spec, resume=True, quiet=True, service=service)
    assert summary.resumed and summary.scored_this_run < summary.scored
    _assert_same_job(tmp_path / "out", tmp_path / "ref")


def _assert_same_job(out: Path, ref: Path) -> None:
    for table in ("articles", "sentences"):
        assert read_output(out, table).to_pylist() == read_output(ref, table).to_pylist()
    assert (out / "rejects.jsonl").read_bytes() == (ref / "rejects.jsonl").read_bytes()
    keys = ("read", "scored", "rejected", "sentences", "rejected_by_kind", "blank_lines", "chunks")
    got, want = json.loads((out / "summary.json").read_text()), json.loads((ref / "summary.json").read_text())
    assert {k: got[k] for k in keys} == {k: want[k] for k in keys}


def _score_cmd(path: Path, out: Path, artifact: Path, *extra: str) -> list[str]:
    exe = Path(sys.executable).with_name("stancekit")
    return [str(exe), "score", str(path), "--out", str(out), "--artifact", str(artifact), "--chunk-size", "3",
            "--max-chars", str(MAX_CHARS), "--quiet", *extra]


def _wait_for(proc: subprocess.Popen, ready, timeout: float = 120.0) -> bool:
    """Poll until `ready()` or the process exits; True when ready first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.002)
    raise TimeoutError("the scoring job neither reached the kill point nor finished")


def test_sigkilled_job_resumes_to_the_uninterrupted_output(tiny_artifact, tmp_path, global_random_seed):
    path = tmp_path / "news.jsonl"
    expected = write_articles(path, 60, seed=5, bad_every=4)
    n_chunks = -(-len(expected["valid_ids"]) // 3)  # --chunk-size 3
    ref = subprocess.run(_score_cmd(path, tmp_path / "ref", tiny_artifact), check=True, capture_output=True, text=True)
    n_valid, n_bad = len(expected["valid_ids"]), len(expected["rejects"])
    assert f"records read {n_valid + n_bad} = scored {n_valid} + rejected {n_bad}" in ref.stdout
    out = tmp_path / "out"
    manifest = out / JOB_MANIFEST

    def committed() -> int:
        try:
            return json.loads(manifest.read_text())["next_chunk"]
        except (OSError, ValueError):
            return 0

    rng = random.Random(global_random_seed)
    targets = sorted(rng.sample(range(1, n_chunks - 2), 3))
    for target in targets:
        # Kill right after chunk `target` commits, or while its part files exist but the manifest
        # has not yet moved past it (inside the commit).
        inside_commit = rng.random() < 0.5
        part = out / "articles" / f"part-{target:06d}.parquet"
        proc = subprocess.Popen(_score_cmd(path, out, tiny_artifact, "--resume"), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        if inside_commit:
            def ready(part=part, target=target) -> bool:
                return part.exists() or committed() > target
        else:
            def ready(target=target) -> bool:
                return committed() >= target
        assert _wait_for(proc, ready), "the job finished before the kill point"
        proc.kill()
        proc.wait()
        assert json.loads(manifest.read_text())["status"] == "running"
    subprocess.run(_score_cmd(path, out, tiny_artifact, "--resume"), check=True, capture_output=True)
    ids = read_output(out, "articles").column("id").to_pylist()
    assert ids == expected["valid_ids"] and len(set(ids)) == len(ids)
    _assert_same_job(out, tmp_path / "ref")
