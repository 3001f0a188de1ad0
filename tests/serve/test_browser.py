"""report.html and the article view in headless Chromium: no console errors, nothing fetched, key elements render.

Talks the Chrome DevTools Protocol over `--remote-debugging-pipe` (JSON messages
separated by NUL on file descriptors 3 and 4), so no websocket library or
browser download is needed. Screenshots go to the pytest tmp dir; their paths
are printed (run with -s to see them).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from stancekit.serve.evaluate import evaluate
from stancekit.serve.explain import explain_article

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
    "--disable-component-update", "--disable-sync", "--remote-debugging-pipe",
]
TIMEOUT_S = 30.0
TRAMPOLINE = (
    "import os, sys\n"
    "cmd, res = int(sys.argv[1]), int(sys.argv[2])\n"
    "os.dup2(cmd, 3); os.dup2(res, 4); os.close(cmd); os.close(res)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


def chromium_binary() -> str | None:
    """$CHROMIUM, else the first of chromium / chromium-browser / google-chrome on PATH."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.fixture(scope="module")
def chromium_path() -> str:
    """Chromium's path; a missing browser fails under CI and skips (saying why) elsewhere."""
    path = chromium_binary()
    if path is None:
        reason = "headless Chromium not found (apt-get install chromium, or set CHROMIUM=/path/to/chrome)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        print(f"skipping browser checks: {reason}")
        pytest.skip(reason)
    return path


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends are fds >= 10, so never the 3 and 4 that Chromium's ends must become."""
    ends = []
    for fd in os.pipe():
        ends.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return ends[0], ends[1]


class DevTools:
    """A headless Chromium driven over the DevTools pipe: send commands, collect events."""

    def __init__(self, binary: str, user_data_dir: Path):
        cmd_r, cmd_w = _high_pipe()
        res_r, res_w = _high_pipe()
        # Chromium reads commands from fd 3 and writes replies to fd 4: a small Python trampoline
        # moves our pipe ends there and execs the browser (preexec_fn is unsafe once threads exist).
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TRAMPOLINE, str(cmd_r), str(res_w), binary, *FLAGS,
             f"--user-data-dir={user_data_dir}", "about:blank"],
            pass_fds=(cmd_r, res_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        os.close(cmd_r)
        os.close(res_w)
        self.out, self.inp = cmd_w, res_r
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            ready, _, _ = select.select([self.inp], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("Chromium did not answer over the DevTools pipe")
            chunk = os.read(self.inp, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited: {self.proc.stderr.read().decode(errors='replace')[-2000:]}")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict[str, Any]:
        """Run one DevTools command and return its result; events seen meanwhile are kept in `events`."""
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.out, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, session: str) -> dict[str, Any]:
        """Block until the event `method` arrives for `session` (or TIMEOUT_S passes)."""
        deadline = time.monotonic() + TIMEOUT_S
        seen = next((e for e in self.events if e.get("method") == method and e.get("sessionId") == session), None)
        while seen is None:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method and event.get("sessionId") == session:
                seen = event
        return seen

    def close(self) -> None:
        """Ask the browser to quit; kill it if it does not."""
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.out)
        os.close(self.inp)


def open_page(browser: DevTools, path: Path, screenshot: Path, checks_js: str) -> dict[str, Any]:
    """Load a local file, run `checks_js`, save a full-page screenshot; return problems and check values."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.send(f"{domain}.enable", session=session)
    browser.send("Emulation.setDeviceMetricsOverride",
                 {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session)
    browser.send("Page.navigate", {"url": path.resolve().as_uri()}, session)
    browser.wait_for("Page.loadEventFired", session)
    checks = browser.send("Runtime.evaluate", {"expression": checks_js, "returnByValue": True}, session)
    if "exceptionDetails" in checks:
        raise AssertionError(f"check script failed: {checks['exceptionDetails']}")
    size = browser.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
    shot = browser.send("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 12000), "scale": 1},
    }, session)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    print(f"screenshot: {screenshot}")
    mine = [e for e in browser.events if e.get("sessionId") == session]
    problems = []
    for e in mine:
        p = e.get("params", {})
        if e["method"] == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert", "warning"):
            problems.append(f"console.{p['type']}: {p['args']}")
        elif e["method"] == "Runtime.exceptionThrown":
            problems.append(f"exception: {p['exceptionDetails']}")
        elif e["method"] == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
            problems.append(f"log {p['entry']['level']}: {p['entry']['text']} {p['entry'].get('url', '')}")
        elif e["method"] == "Network.requestWillBeSent":
            url = p["request"]["url"]
            if not url.startswith(("file:", "data:", "about:")):
                problems.append(f"fetched {url} (the page must be self-contained)")
    return {"problems": problems, "checks": checks["result"]["value"], "screenshot": screenshot}


REPORT_CHECKS = """(() => {
  const imgs = [...document.images];
  const anchors = [...document.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute('href').slice(1));
  return {
    title: document.title,
    sections: [...document.querySelectorAll('main > section')].map(s => s.id),
    heads: [...document.querySelectorAll('section.head')].map(s => s.id),
    images: imgs.length,
    brokenImages: imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt),
    perClassRows: document.querySelectorAll('table.per-class tbody tr').length,
    sliceTables: [...document.querySelectorAll('table.slice')].map(t => t.dataset.column),
    danglingAnchors: anchors.filter(id => id && !document.getElementById(id)),
    overflowX: document.documentElement.scrollWidth - window.innerWidth,
    bodyFont: getComputedStyle(document.body).fontFamily,
  };
})()"""

ARTICLE_CHECKS = r"""(() => {
  const sentences = [...document.querySelectorAll('.article span.s')];
  const bar = document.querySelector('.head-bar .bar');
  const parts = [...bar.querySelectorAll('.part')];
  return {
    sentences: sentences.length,
    withTitle: sentences.filter(s => s.title.includes('stance:')).length,
    dropped: [...document.querySelectorAll('.article del.dropped')].map(d => getComputedStyle(d).textDecorationLine),
    articleText: document.querySelector('.article').textContent,
    colorByLabel: sentences.map(s => [s.dataset.label, getComputedStyle(s).backgroundColor.replace(/, [0-9.]+\)$/, ')')]),
    markers: sentences.map(s => [s.dataset.mark, getComputedStyle(s, '::after').content]),
    leanDot: !!document.querySelector('#lean .dot') && document.querySelector('#lean .dot').getBoundingClientRect().width > 0,
    barFill: parts.reduce((w, p) => w + p.getBoundingClientRect().width, 0) / bar.clientWidth,
    overflowX: document.documentElement.scrollWidth - window.innerWidth,
  };
})()"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory, tiny_artifact, tiny_data, sample_article) -> dict[str, Path]:
    """report.html for the tiny test split and the article view of the sample article."""
    out = tmp_path_factory.mktemp("browser_pages")
    evaluate(tiny_artifact, tiny_data["test"], out / "report", samples=200)
    explain_article(tiny_artifact, sample_article, out / "article.html", article_id="japan_abe_putin_sochi_2016")
    return {"report": out / "report" / "report.html", "article": out / "article.html"}


@pytest.fixture(scope="module")
def browser(chromium_path, tmp_path_factory):
    """One headless Chromium with a fresh profile directory for this module."""
    b = DevTools(chromium_path, tmp_path_factory.mktemp("chromium_profile"))
    yield b
    b.close()


def test_report_renders_in_chromium_without_errors(browser, pages, tmp_path_factory):
    result = open_page(browser, pages["report"], tmp_path_factory.mktemp("shots") / "report.png", REPORT_CHECKS)
    c = result["checks"]
    assert result["problems"] == []
    assert c["title"].startswith("Evaluation")
    assert {"summary", "baselines", "slices", "examples", "articles", "method"} <= set(c["sections"])
    assert c["heads"] == ["head-stance", "head-sentiment"]
    # confusion + reliability per head, the baselines bars, the article scatter
    assert c["images"] == 6 and c["brokenImages"] == []
    assert c["perClassRows"] == 2 * 4  # three labels and the macro average, per head
    assert c["sliceTables"] == ["source"]
    assert c["danglingAnchors"] == []
    assert c["overflowX"] <= 0
    assert result["screenshot"].stat().st_size > 10_000


def test_article_view_renders_in_chromium_without_errors(browser, pages, sample_article, tmp_path_factory):
    result = open_page(browser, pages["article"], tmp_path_factory.mktemp("shots") / "article.png", ARTICLE_CHECKS)
    c = result["checks"]
    assert result["problems"] == []
    assert c["sentences"] == 24 and c["withTitle"] == 24
    assert c["dropped"] == ["line-through"] * 7
    assert c["articleText"] == sample_article  # every character of the article, in order, nothing added
    hues = {label: {rgb for lab, rgb in c["colorByLabel"] if lab == label} for label, _ in c["colorByLabel"]}
    assert all(len(rgbs) == 1 for rgbs in hues.values())  # one hue per stance label, whatever the confidence
    assert len({next(iter(rgbs)) for rgbs in hues.values()}) == len(hues)  # and different labels differ
    badge = {"negative": '"−"', "positive": '"+"', "neutral": "none"}
    assert all(content == badge[mark] for mark, content in c["markers"])
    assert c["leanDot"]
    assert c["barFill"] == pytest.approx(1.0, abs=0.02)
    assert c["overflowX"] <= 0
    assert result["screenshot"].stat().st_size > 10_000
