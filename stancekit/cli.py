"""`stancekit` command line: thin wrappers that parse options and call importable functions."""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from stancekit.errors import StancekitError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Stance and sentiment for news text.")
data_app = typer.Typer(no_args_is_help=True, help="Corpus tools.")
app.add_typer(data_app, name="data")

ArtifactOpt = Annotated[Path, typer.Option("--artifact", "-a", help="Artifact directory written by `stancekit train`.")]
BackendOpt = Annotated[
    Optional[str],
    typer.Option(help="torch | torch-bf16 | torch-int8 | onnx | onnx-int8 (default: the artifact's serve.backend)"),
]
ThreadsOpt = Annotated[Optional[int], typer.Option(help="Inference threads (default: all cores).")]


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def friendly_errors(fn):
    """Turn StancekitError into one red line and exit code 2 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StancekitError as err:
            _fail(str(err))

    return wrapper


def _setup_logging(quiet: bool = False) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "datasets", "transformers", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
@friendly_errors
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config (see configs/).")] = Path("configs/default.yaml"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Artifact directory to write.")] = Path("artifacts/default"),
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a key: --set training.epochs=2")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last epoch checkpoint.")] = False,
    leave_out_source: Annotated[
        Optional[str], typer.Option(help="Train without this source, then evaluate on its rows only.")
    ] = None,
) -> None:
    """Fine-tune the encoder with all heads and write an artifact."""
    from stancekit.config import load_config
    from stancekit.training.train import train as run_train

    _setup_logging()
    overrides = list(set_ or [])
    if leave_out_source:
        from stancekit.training.leave_out import leave_one_source_out

        cfg = load_config(config, overrides)
        result = leave_one_source_out(cfg, leave_out_source, out)
        typer.echo(json.dumps(result, indent=2))
        return
    cfg = load_config(config, overrides)
    result = run_train(cfg, out, resume=resume)
    typer.echo(f"wrote {result.artifact} in {result.seconds:.0f} s")
    from stancekit.training.card import metrics_table

    for split, sm in result.metrics["splits"].items():
        typer.echo(f"\n{split}:")
        typer.echo("\n".join(metrics_table(sm, list(cfg.heads))))


@app.command()
@friendly_errors
def classify(
    sentences: Annotated[list[str], typer.Argument(help="Sentences to classify.")],
    artifact: ArtifactOpt = Path("artifacts/default"),
    backend: BackendOpt = None,
    threads: ThreadsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Classify sentences and print labels with probabilities."""
    from stancekit.serve.service import StanceService

    svc = StanceService.from_artifact(artifact, backend=backend, threads=threads)
    preds = svc.classify(sentences)
    if as_json:
        typer.echo(json.dumps([p.model_dump() for p in preds], indent=2))
        return
    for p in preds:
        cells = "  ".join(f"{h}={hp.label} ({hp.confidence:.2f})" for h, hp in p.heads.items())
        typer.echo(f"{cells}  | {p.text}")


@app.command()
@friendly_errors
def profile(
    articles: Annotated[list[Path], typer.Argument(help="Article .txt files, or directories of them.")],
    artifact: ArtifactOpt = Path("artifacts/default"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for profiles, HTML views and report.md.")] = Path("profiles"),
    backend: BackendOpt = None,
    threads: ThreadsOpt = None,
    long_text: Annotated[
        Optional[str],
        typer.Option(help="Over-long sentences: truncate (counted) or window (default: the artifact's serve.long_text)."),
    ] = None,
    sentences: Annotated[bool, typer.Option(help="Include per-sentence predictions in the JSON.")] = True,
    html: Annotated[bool, typer.Option(help="Also write <article>.html, the highlighted article view.")] = True,
) -> None:
    """Profile articles (text files): JSON profile and HTML view per article, report.md, printed summary."""
    from stancekit.serve.report import profile_articles, profile_summary
    from stancekit.serve.service import StanceService

    _setup_logging(quiet=True)
    svc = StanceService.from_artifact(artifact, backend=backend, threads=threads, long_text=long_text)
    for f, prof in profile_articles(articles, svc, out, html=html, include_sentences=sentences):
        typer.echo(profile_summary(prof))
        typer.echo(f"  -> {out / (f.stem + '.profile.json')}\n")
    typer.echo(f"report: {out / 'report.md'}")


@data_app.command("validate")
@friendly_errors
def data_validate(
    corpus: Annotated[Path, typer.Argument(help="Corpus directory with train/dev/test JSONL.")] = Path("data/corpus"),
) -> None:
    """Check schema, labels, duplicates, leakage; print label mix per split and source."""
    from stancekit.training.corpus import validate_corpus

    report = validate_corpus(corpus)
    typer.echo(report.render())
    if report.problems:
        raise typer.Exit(1)


@app.command("export-onnx")
@friendly_errors
def export_onnx_cmd(
    artifact: ArtifactOpt = Path("artifacts/default"),
    quantize: Annotated[bool, typer.Option(help="Also write a dynamic int8 model.")] = True,
) -> None:
    """Export an artifact to ONNX (for the onnx / onnx-int8 backends)."""
    from stancekit.model.artifact import verify_artifact
    from stancekit.serve.onnx_engine import export_onnx

    out = export_onnx(verify_artifact(artifact), quantize=quantize)
    typer.echo(f"wrote {out}")


bench_app = typer.Typer(no_args_is_help=True, help="Quality checks of inference backends.")
app.add_typer(bench_app, name="bench")


@bench_app.command("parity")
@friendly_errors
def bench_parity(
    artifact: ArtifactOpt = Path("artifacts/default"),
    data: Annotated[Path, typer.Option("--data", help="Labelled rows.")] = Path("data/corpus/dev.jsonl"),
    backends: Annotated[str, typer.Option(help="Comma-separated backends to compare with torch fp32.")] = (
        "torch-bf16,torch-int8,onnx,onnx-int8"
    ),
) -> None:
    """Label agreement and macro-F1 of each backend against torch fp32."""
    from stancekit.serve.parity import backend_parity, render_parity

    typer.echo(render_parity(backend_parity(artifact, data, [b.strip() for b in backends.split(",") if b.strip()])))


# --- score (issue 6: batch jobs; owned by serve/jobs.py) ------------------------------------
@app.command()
@friendly_errors
def score(
    input: Annotated[Path, typer.Argument(help="JSONL, CSV or Parquet file, one article per record.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")],
    artifact: ArtifactOpt = Path("artifacts/default"),
    id_field: Annotated[str, typer.Option(help="Field holding the article id.")] = "id",
    text_field: Annotated[str, typer.Option(help="Field holding the article text.")] = "text",
    fmt: Annotated[str, typer.Option("--format", help="Output format: parquet | jsonl.")] = "parquet",
    resume: Annotated[bool, typer.Option(help="Finish an interrupted job in OUTDIR.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Delete a previous job's output in OUTDIR first.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    engine: Annotated[str, typer.Option(help="local (this process) | ray (Ray Data actor pool).")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="Ray cluster to join (default: start a local one).")] = None,
    ray_actors: Annotated[Optional[int], typer.Option(help="Ray actors, one model each (default: one per CPU).")] = None,
    max_chars: Annotated[int, typer.Option(help="Longer article texts are rejected.")] = 100_000,
    chunk_size: Annotated[int, typer.Option(help="Articles per committed chunk (the unit lost on a crash).")] = 256,
    backend: BackendOpt = None,
    threads: Annotated[Optional[int], typer.Option(help="Threads per model (ray: CPUs per actor, default 1).")] = None,
) -> None:
    """Score an article collection: profiles and sentences out, rejects kept, resumable."""
    from stancekit.serve.jobs import JobSpec, run_job

    _setup_logging(quiet)
    spec = JobSpec(input, out, artifact, id_field=id_field, text_field=text_field, format=fmt,
                   chunk_size=chunk_size, max_chars=max_chars, backend=backend, threads=threads, engine=engine)
    if engine == "ray":
        from stancekit.serve.ray_jobs import run_ray_job

        summary = run_ray_job(spec, resume=resume, overwrite=overwrite, quiet=quiet, address=ray_address,
                              actors=ray_actors)
    else:
        summary = run_job(spec, resume=resume, overwrite=overwrite, quiet=quiet)
    typer.echo(summary.render())


# --- serve (issue 7: HTTP service; owned by serve/http.py) ---------------------------------
@app.command()
@friendly_errors
def serve(
    artifact: ArtifactOpt = Path("artifacts/default"),
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    backend: BackendOpt = None,
    max_batch_tokens: Annotated[int, typer.Option(help="Tokens per merged batch: throughput vs latency.")] = 16384,
    max_wait_ms: Annotated[float, typer.Option(help="How long an idle worker waits for requests still being tokenized, to merge them.")] = 5.0,
    max_queue: Annotated[int, typer.Option(help="Sentences allowed to wait; beyond it 429.")] = 4096,
    timeout_s: Annotated[float, typer.Option(help="Per-request deadline; beyond it 503.")] = 30.0,
    no_batching: Annotated[bool, typer.Option("--no-batching", help="One batch per request (baseline).")] = False,
    pad_multiple: Annotated[
        int, typer.Option(help="Round batch rows and length up to a multiple of this: few shapes to compile.")
    ] = 4,
    threads: ThreadsOpt = None,
    workers: Annotated[
        Optional[int], typer.Option(help="Batches scored at once (default: one single-threaded worker per thread).")
    ] = None,
) -> None:
    """Run the HTTP service (FastAPI) with cross-request batching."""
    from stancekit.serve.http import ServeSettings, run_server

    _setup_logging()
    settings = ServeSettings.from_options(
        artifact=artifact, host=host, port=port, backend=backend, max_batch_tokens=max_batch_tokens,
        max_wait_ms=max_wait_ms, max_queue=max_queue, timeout_s=timeout_s, batching=not no_batching,
        threads=threads, workers=workers, pad_multiple=pad_multiple,
    )
    run_server(settings)


# --- evaluate / explain (issue 8: reports; owned by serve/evaluate.py, report_html.py, explain.py)
@app.command()
@friendly_errors
def evaluate(
    artifact: ArtifactOpt = Path("artifacts/default"),
    data: Annotated[Path, typer.Option("--data", help="Labelled JSONL, CSV or Parquet.")] = Path("data/corpus/test.jsonl"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Report directory.")] = Path("reports/test"),
    backend: BackendOpt = None,
    bootstrap: Annotated[int, typer.Option(min=0, help="Bootstrap resamples for the 95% intervals (0: none).")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
) -> None:
    """Evaluate an artifact on labelled data: report.html, report.md, metrics.json."""
    from stancekit.serve.evaluate import evaluate as run_evaluate
    from stancekit.serve.report_html import summary_table

    _setup_logging(quiet=True)
    metrics = run_evaluate(artifact, data, out, backend=backend, samples=bootstrap, seed=seed)
    typer.echo(summary_table(metrics))
    typer.echo(f"\nwrote {out / 'report.html'}, {out / 'report.md'}, {out / 'metrics.json'}")


@app.command()
@friendly_errors
def explain(
    article: Annotated[Path, typer.Argument(help="Article text file.")],
    artifact: ArtifactOpt = Path("artifacts/default"),
    html: Annotated[Path, typer.Option("--html", help="Output HTML file.")] = Path("reports/article.html"),
    backend: BackendOpt = None,
) -> None:
    """Render one article with sentences shaded by stance, as a self-contained HTML file."""
    from stancekit.serve.explain import explain_article, read_article
    from stancekit.serve.report import profile_summary

    _setup_logging(quiet=True)
    prof = explain_article(artifact, read_article(article), html, article_id=article.stem, backend=backend)
    typer.echo(profile_summary(prof))
    typer.echo(f"  -> {html}")


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    sys.exit(main())
