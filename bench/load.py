"""Load test of the HTTP service on loopback: cross-request batching vs one batch per request, one run.

    python bench/load.py --duration 60                      # untrained heads on the real encoder
    python bench/load.py --artifact artifacts/default --duration 20

Starts two real servers (`stancekit serve` subprocesses, uvicorn on 127.0.0.1), one
with cross-request batching and one with --no-batching. For each load (closed loop
with 8 and 64 concurrent clients, each posting one 20-sentence article to /v1/profile
and waiting for the answer before the next; open loop at a fixed arrival rate,
default half the engine's offline throughput) it first measures the engine offline in
this process (median of five Predictor.predict_proba passes over 1,200 sentences, warmed
by one pass, with the server's --workers), runs the load against batching on, then off,
and measures the engine again: each pair's reference is the mean of the two measures,
which matters on a shared machine whose speed drifts. Prints throughput, p50/p99 latency, 5xx and 429 counts,
mean batch size, /healthz latency under load and the server's peak RSS, with ratios
to the offline engine and to batching off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import corpus_sentences, machine

STANCE = ["pro_us_alignment", "pro_russia_engagement", "neutral"]
SENTIMENT = ["negative", "neutral", "positive"]


def build_untrained_artifact(out: Path, max_length: int = 128) -> Path:
    """Artifact of the packaged MiniLM encoder with untrained heads: real compute, meaningless labels."""
    import torch

    import stancekit
    from stancekit.config import StancekitConfig
    from stancekit.model.artifact import HeadSpec, Manifest, save_artifact
    from stancekit.model.encoder import load_pretrained_encoder, load_tokenizer
    from stancekit.model.heads import MultiHeadClassifier

    cfg = StancekitConfig(
        name="bench-untrained-heads", model={"max_length": max_length},
        heads={"stance": {"labels": STANCE}, "sentiment": {"labels": SENTIMENT}},
    )
    torch.manual_seed(0)
    model = MultiHeadClassifier(load_pretrained_encoder(cfg.model.base), {h: 3 for h in cfg.heads}, dropout=0.0)
    manifest = Manifest(
        stancekit_version=stancekit.__version__, name=cfg.name, base_model=cfg.model.base, max_length=max_length,
        pooling=cfg.model.pooling, heads={h: HeadSpec(labels=s.labels, field=h) for h, s in cfg.heads.items()},
        profile=cfg.profile.model_dump(), training_config=cfg.to_dict(),
    )
    save_artifact(out, model, load_tokenizer(cfg.model.base), manifest, {}, "# bench artifact (untrained heads)\n")
    return out


def make_articles(n: int, per_article: int, per_paragraph: int = 1) -> list[str]:
    """`n` articles of `per_article` real corpus sentences, `per_paragraph` sentences per paragraph.

    One sentence per line (the default, as in every recorded run) lets the splitter skip
    pysbd on most lines; news paragraphs of two or three sentences cost it 4-5x more.
    """
    sents = corpus_sentences(n * per_article)
    out = []
    for i in range(n):
        own = sents[i * per_article:(i + 1) * per_article]
        out.append("\n\n".join(" ".join(own[j:j + per_paragraph]) for j in range(0, len(own), per_paragraph)))
    return out


class Offline:
    """The engine and the Python API in this process, on the same articles as the load."""

    def __init__(self, artifact: Path, backend: str, articles: list[str], workers: int = 1):
        from stancekit.serve.sentences import split_article
        from stancekit.serve.service import StanceService

        self.svc = StanceService.from_artifact(artifact, backend=backend, workers=workers)
        self.articles = articles
        self.sentences = [s.text for a in articles for s in split_article(a).sentences]
        self.sentences_per_article = len(self.sentences) / len(articles)
        self.svc.predictor.predict_proba(self.sentences[:1200])  # warm: every batch shape seen once, like a running server

    def engine_sps(self, n: int = 1200, passes: int = 5) -> float:
        """Median sentences/s of `passes` predict_proba calls on `n` sentences (length-sorted batches, no HTTP).

        One pass takes about a second; on a shared VM whose speed drifts by 5-10 % within
        minutes, a single pass made the reference, and so every ratio, swing by as much.
        """
        batch, rates = self.sentences[:n], []
        for _ in range(passes):
            start = time.perf_counter()
            self.svc.predictor.predict_proba(batch)
            rates.append(len(batch) / (time.perf_counter() - start))
        return float(np.median(rates))

    def api_sps(self) -> float:
        """Sentences/s of StanceService.profile_many on every article (splitting included)."""
        start = time.perf_counter()
        self.svc.profile_many(self.articles)
        return len(self.sentences) / (time.perf_counter() - start)


@dataclass
class RunStats:
    """Outcome of one load run."""

    name: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    transport_errors: int = 0
    peak_rss_mb: float = 0.0
    mean_batch: float = 0.0
    health: list[float] = field(default_factory=list)
    engine_sps: float = float("nan")  # offline engine rate: mean of the measures just before and after this load
    engine_range: tuple[float, float] = (float("nan"), float("nan"))  # (before, after)

    @property
    def ok(self) -> int:
        """Requests answered 200."""
        return self.statuses[200]

    def pct(self, q: float) -> float:
        """Latency percentile of 200 answers, ms."""
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else float("nan")


class Server:
    """`stancekit serve` in a subprocess on a free loopback port; peak RSS sampled while a run is on."""

    def __init__(self, artifact: Path, options: list[str], log: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "stancekit.cli", "serve", "--artifact", str(artifact), "--port", str(self.port),
               *options]
        self.log = log
        self.proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
        self._peak, self._sampling = 0, False

    def wait_ready(self, timeout: float = 300) -> None:
        """Poll /readyz until 200; fail with the server log if it exits or never gets ready."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def _sample(self) -> None:
        import psutil

        proc = psutil.Process(self.proc.pid)
        while self._sampling:
            self._peak = max(self._peak, proc.memory_info().rss)
            time.sleep(0.1)

    def start_sampling(self) -> None:
        """Begin tracking the server's peak RSS."""
        self._peak, self._sampling = 0, True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop_sampling(self) -> float:
        """Peak RSS since start_sampling, MiB."""
        self._sampling = False
        self._thread.join()
        return self._peak / 2**20

    def batch_counters(self) -> tuple[float, float]:
        """(sentences, batches) so far, from /metrics."""
        import httpx

        values = {}
        for line in httpx.get(self.url + "/metrics", timeout=10).text.splitlines():
            if line.startswith(("stancekit_batch_sentences_sum ", "stancekit_batch_sentences_count ")):
                name, value = line.split()
                values[name] = float(value)
        return values.get("stancekit_batch_sentences_sum", 0.0), values.get("stancekit_batch_sentences_count", 0.0)

    def stop(self) -> str:
        """SIGTERM (graceful: in-flight and queued work finish); how the server ended."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "killed after 120 s"
        # uvicorn re-raises the captured SIGTERM after a clean shutdown, so the exit code is -15 either way.
        clean = "Application shutdown complete" in self.log.read_text()
        return "graceful" if clean else f"exit {self.proc.returncode} without lifespan shutdown"


async def _post(session, url: str, body: bytes, stats: RunStats, started: float, deadline: float) -> None:
    import aiohttp

    try:
        async with session.post(url + "/v1/profile", data=body, headers={"content-type": "application/json"}) as r:
            await r.read()
            status = r.status
    except (aiohttp.ClientError, asyncio.TimeoutError):
        stats.transport_errors += 1
        return
    done = time.perf_counter()
    if done <= deadline:  # answers after the window are not part of the measured throughput
        stats.statuses[status] += 1
        if status == 200:
            stats.latencies.append(done - started)


def _session(connections: int):
    # aiohttp rather than httpx: the load generator shares the server's two cores, and
    # aiohttp spends about a sixth of httpx's CPU per request (0.44 vs 2.54 s of CPU
    # for 30 s of 64 closed-loop clients).
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections), timeout=aiohttp.ClientTimeout(total=600)
    )


def _bodies(articles: list[str]) -> list[bytes]:
    return [json.dumps({"articles": [{"id": f"a{i}", "text": t}]}).encode() for i, t in enumerate(articles)]


async def _probe_health(url: str, stats: RunStats, deadline: float) -> None:
    # /healthz latency under load shows whether anything blocks the server's event loop.
    async with _session(1) as session:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.get(url + "/healthz") as r:
                await r.read()
            stats.health.append(time.perf_counter() - started)
            await asyncio.sleep(0.25)


async def closed_loop(url: str, articles: list[str], clients: int, seconds: float) -> RunStats:
    """`clients` workers, each posting the next article as soon as the previous answer arrives."""
    stats, bodies = RunStats(f"closed {clients}", seconds), _bodies(articles)
    async with _session(clients) as session:
        deadline = time.perf_counter() + seconds

        async def worker(k: int) -> None:
            i = k
            while time.perf_counter() < deadline:
                await _post(session, url, bodies[i % len(bodies)], stats, time.perf_counter(), deadline)
                i += clients

        await asyncio.gather(_probe_health(url, stats, deadline), *(worker(k) for k in range(clients)))
    return stats


async def open_loop(url: str, articles: list[str], rate: float, seconds: float) -> RunStats:
    """Requests at a fixed rate regardless of answers; latency counts from the scheduled send time."""
    stats, bodies = RunStats(f"open {rate:.2f}/s", seconds), _bodies(articles)
    async with _session(1024) as session:
        start = time.perf_counter()
        deadline, i = start + seconds, 0
        tasks = [asyncio.create_task(_probe_health(url, stats, deadline))]
        while (due := start + i / rate) < deadline:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(
                _post(session, url, bodies[i % len(bodies)], stats, due, deadline + 30)
            ))
            i += 1
        await asyncio.gather(*tasks)
    stats.seconds = seconds
    return stats


def _measure(server: Server, run) -> RunStats:
    sentences0, batches0 = server.batch_counters()
    server.start_sampling()
    stats = asyncio.run(run)
    stats.peak_rss_mb = server.stop_sampling()
    sentences1, batches1 = server.batch_counters()
    stats.mean_batch = (sentences1 - sentences0) / max(1.0, batches1 - batches0)
    return stats


def run_all(args, artifact: Path, offline: Offline, rate: float | None,
            tmp: Path) -> tuple[list[RunStats], list[RunStats]]:
    """Both servers up at once; each load runs against batching on, then off, between two offline measures.

    The reference for a pair is the mean of the engine measured right before and right
    after it, so a shared machine's drifting speed biases the ratios as little as possible.
    Without `rate`, the open-loop rate is half the engine measured right before that pair.
    """
    options = ["--backend", args.backend, "--workers", str(args.workers), "--max-batch-tokens", str(args.max_batch_tokens),
               "--max-wait-ms", str(args.max_wait_ms), "--pad-multiple", str(args.pad_multiple),
               "--timeout-s", str(args.timeout_s),
               "--max-queue", str(args.max_queue)]
    servers = {"on": Server(artifact, options, tmp / "server-on.log"),
               "off": Server(artifact, [*options, "--no-batching"], tmp / "server-off.log")}
    results: dict[str, list[RunStats]] = {"on": [], "off": []}
    try:
        for server in servers.values():
            server.wait_ready()
        for kind, value in [("closed", c) for c in args.clients] + [("open", rate)]:
            before = offline.engine_sps()
            if kind == "open" and value is None:
                value = 0.5 * before / offline.sentences_per_article
                print(f"  open-loop rate {value:.2f} articles/s: half of {before:.1f} sentences/s", flush=True)
            pair = []
            for mode, server in servers.items():
                run = (closed_loop(server.url, offline.articles, int(value), args.duration) if kind == "closed"
                       else open_loop(server.url, offline.articles, value, args.duration))
                stats = _measure(server, run)
                results[mode].append(stats)
                pair.append(stats)
                print(f"  batching {mode}, {stats.name}: {stats.ok} ok, statuses {dict(stats.statuses)}", flush=True)
            after = offline.engine_sps()
            for stats in pair:
                stats.engine_sps, stats.engine_range = (before + after) / 2, (before, after)
            print(f"  engine offline {before:.1f} sentences/s before, {after:.1f} after", flush=True)
    finally:
        for mode, server in servers.items():
            print(f"  server (batching {mode}) after SIGTERM: {server.stop()}", flush=True)
    return results["on"], results["off"]


def render(offline: dict[str, float], on: list[RunStats], off: list[RunStats]) -> str:
    """Markdown table with ratios to the offline engine (measured just before each load) and to batching off."""
    spa = offline["sentences_per_article"]
    lines = [
        (f"Python API profile_many: {offline['api_sps']:.1f} sentences/s; {spa:.1f} sentences/article; "
         f"open-loop rate = half the engine measured just before the open-loop pair"),
        "",
        ("| batching | load | articles/s | sentences/s | engine offline sent/s (before/after) | x engine offline "
         "| x batching off "
         "| p50 ms | p99 ms | 5xx | 429 | other errors | mean batch (sentences) | /healthz p99 ms | peak RSS MiB |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, runs in (("on", on), ("off", off)):
        for i, s in enumerate(runs):
            aps = s.ok / s.seconds
            base = off[i].ok / off[i].seconds if i < len(off) and off[i].ok else float("nan")
            five = sum(n for code, n in s.statuses.items() if code >= 500)
            other = s.transport_errors + sum(n for code, n in s.statuses.items() if code not in (200, 429) and code < 500)
            health = np.percentile(s.health, 99) * 1000 if s.health else float("nan")
            lines.append(
                f"| {label} | {s.name} | {aps:.2f} | {aps * spa:.1f} | {s.engine_sps:.1f} "
                f"({s.engine_range[0]:.0f}/{s.engine_range[1]:.0f}) | "
                f"{aps * spa / s.engine_sps:.2f} | {aps / base:.2f} | {s.pct(50):.0f} | {s.pct(99):.0f} | {five} | "
                f"{s.statuses[429]} | {other} | {s.mean_batch:.1f} | {health:.0f} | {s.peak_rss_mb:.0f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse options, measure offline, load both servers, print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifact", type=Path, help="Artifact to serve (default: real encoder, untrained heads).")
    p.add_argument("--backend", default="torch")
    p.add_argument("--duration", type=float, default=60.0, help="Seconds per load run.")
    p.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[8, 64])
    p.add_argument("--rate", type=float, help="Open-loop articles/s (default: half the engine's offline rate).")
    p.add_argument("--articles", type=int, default=200, help="Distinct articles cycled through.")
    p.add_argument("--sentences", type=int, default=20, help="Sentences per article.")
    p.add_argument("--per-paragraph", type=int, default=1, help="Sentences per paragraph (news: 2-3).")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="Engine workers, for the server and the offline reference alike (default: one per core).")
    p.add_argument("--max-batch-tokens", type=int, default=16384)
    p.add_argument("--pad-multiple", type=int, default=4)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--max-queue", type=int, default=4096)
    p.add_argument("--timeout-s", type=float, default=120.0)
    args = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory(prefix="stancekit-load-") as d:
        tmp = Path(d)
        artifact = args.artifact or build_untrained_artifact(tmp / "artifact")
        articles = make_articles(args.articles, args.sentences, args.per_paragraph)
        print(f"machine: {json.dumps(machine())}", flush=True)
        offline = Offline(artifact, args.backend, articles, args.workers)
        first = offline.engine_sps()
        summary = {"sentences_per_article": offline.sentences_per_article, "api_sps": offline.api_sps()}
        print(f"offline: engine {first:.1f} sentences/s, {json.dumps(summary)}", flush=True)
        on, off = run_all(args, artifact, offline, args.rate, tmp)
    print(f"\nload: {args.duration:g} s per run, {args.per_paragraph} sentence(s) per paragraph, "
          f"backend {args.backend}, --workers {args.workers}, "
          f"--max-batch-tokens {args.max_batch_tokens}, --pad-multiple {args.pad_multiple}, "
          f"--max-wait-ms {args.max_wait_ms:g}\n")
    print(render(summary, on, off))


if __name__ == "__main__":
    main()
