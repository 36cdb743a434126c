"""The report in a real browser: headless Chromium loads it, runs its script, makes no request.

Skips where Chromium is absent (``apt-get install chromium`` on Debian; ``.ci/run`` installs it).

How "no network request" is proven: Chromium is started with ``--proxy-server`` pointing at a tiny
``http.server`` on 127.0.0.1 (``<-loopback>`` removed from the bypass list), and the report is
loaded from the made-up origin ``http://report.test/``. Every request the browser makes — to any
host, HTTP or HTTPS (``CONNECT``) — therefore reaches that server, which records it; the only one
allowed is the report itself. How "no console error" is proven: Chromium's console log goes to
stderr (``--enable-logging=stderr --v=0``) and must hold no console line; the page's own
``window.onerror`` hook would write a ``data-js-error`` marker into the DOM, which must be absent,
and the sortable-table script must have marked every table ``data-sortable="ready"``. A canary page
that makes one external request and throws one error proves both detectors work. Requests that
Chromium's own services make at start-up whatever the page (its updater and account service) are
recognised by a narrow rule (:func:`_browser_own`) and set aside.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from trialkit.ledger import open_workspace
from trialkit.report import write_report

from .test_report import TODAY, build_workspace

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (chromium or chromium-browser on PATH); "
    "install it with `apt-get install chromium` to run the headless report tests",
)
ORIGIN = "http://report.test"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
         "--disable-extensions", "--mute-audio", "--no-default-browser-check", "--no-pings",
         "--disable-domain-reliability", "--disable-client-side-phishing-detection",
         "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate",
         "--gaia-url=http://gaia.invalid"]


def _browser_own(request: str) -> bool:
    """A request Chromium's own services make whatever the page (not the page's doing).

    Even with the flags above, Debian's Chromium asks its updater (signed with ``cup2key``, over
    ``update.googleapis.com``) and its account service (sent to ``--gaia-url``) at start-up. The list
    is narrow on purpose: a page's request for a font, script or image never matches it.
    """
    return ("cup2key=" in request or request == "CONNECT update.googleapis.com:443"
            or request.split(" ")[-1].startswith(("http://gaia.invalid/", "gaia.invalid:")))


class _Recorder:
    """A proxy-shaped HTTP server on 127.0.0.1 that records every request and serves given pages."""

    def __init__(self, pages: dict[str, bytes]) -> None:
        self.requests: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                recorder.requests.append(f"{self.command} {self.path}")
                body = pages.get(self.path)
                if body is None or self.command != "GET":
                    self.send_error(404 if self.command != "CONNECT" else 403)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_HEAD = do_CONNECT = do_OPTIONS = _any

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(profile)}  # nothing from the user's own profile
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=180, env=env, check=False,
    )


def _load_through_proxy(tmp_path: Path, page: bytes, name: str) -> tuple[str, str, list[str]]:
    """Load ``page`` from ``ORIGIN/name`` through the recording proxy: (dumped DOM, stderr, requests)."""
    url = f"{ORIGIN}/{name}"
    with _Recorder({url: page}) as recorder:
        result = _chromium(
            tmp_path / f"profile-{name}",
            f"--proxy-server={recorder.proxy}", "--proxy-bypass-list=<-loopback>",
            "--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000", "--dump-dom", url,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr, [r for r in recorder.requests if not _browser_own(r)]


def _console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="module")
def report_file(tmp_path_factory, study) -> Path:
    root = tmp_path_factory.mktemp("browser")
    ws = build_workspace(root, study)
    return write_report(open_workspace(ws), study, root / "report.html", today=TODAY)


def test_the_detectors_see_a_request_and_an_error(tmp_path):
    canary = (b"<!DOCTYPE html><html><head><title>canary</title><link rel='icon' href='data:,'></head><body>"
              b"<img src='http://cdn.example.invalid/pixel.png' alt=''>"
              b"<script>console.error('canary-console-error'); undefinedFunction();</script></body></html>")
    dom, stderr, requests = _load_through_proxy(tmp_path, canary, "canary.html")
    assert "GET http://cdn.example.invalid/pixel.png" in requests, requests
    console = _console_lines(stderr)
    assert any("canary-console-error" in line for line in console), stderr[-2000:]
    assert any("undefinedFunction" in line for line in console), stderr[-2000:]


def test_report_loads_with_no_request_and_no_console_error(report_file, tmp_path):
    dom, stderr, requests = _load_through_proxy(tmp_path, report_file.read_bytes(), "report.html")
    assert requests == [f"GET {ORIGIN}/report.html"]
    assert _console_lines(stderr) == []
    assert 'data-js-error="' not in dom and 'id="js-error"' not in dom
    assert 'data-report-js="ready"' in dom
    tables = dom.count('class="sortable"')
    assert tables >= 5 and dom.count('data-sortable="ready"') == tables
    assert dom.count("<svg") == 5
    assert "<button" in dom  # the header buttons the script adds


def test_dump_dom_from_the_file_works_offline(report_file, tmp_path):
    result = _chromium(tmp_path / "profile", "--dump-dom", report_file.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'data-report-js="ready"' in result.stdout and 'data-js-error="' not in result.stdout
    assert "serious AE &lt;script&gt;alert(1)&lt;/script&gt;" in result.stdout


def test_screenshot_is_a_png_of_the_requested_size(report_file, tmp_path):
    png = tmp_path / "report.png"
    result = _chromium(tmp_path / "profile", f"--screenshot={png}", "--window-size=1280,2000",
                       "--hide-scrollbars", report_file.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (1280, 2000)
    assert len(data) > 20_000  # a rendered page, not a blank image
