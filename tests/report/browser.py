"""Render an HTML file in headless Chromium (Debian's ``chromium``): DOM, screenshot and network log.

Page-initiated requests are told apart from Chromium's own background traffic (update checks, account
look-ups) by the net log's ``initiator``: the browser's own requests have ``"not an origin"``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    """The Chromium executable, or skip with the way to install it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("Chromium not installed: run scripts/ensure_chromium.sh (apt-get install -y chromium)")


@dataclass
class Rendered:
    dom: str
    screenshot: Path
    page_requests: list[str]


def render(html: Path, work: Path, *, height: int = 4000) -> Rendered:
    """Load ``html`` from disk twice: once for the DOM (with a net log), once for a screenshot."""
    exe = chromium()
    url = html.resolve().as_uri()
    netlog = work / "netlog.json"
    dom = subprocess.run(
        [exe, *FLAGS, f"--user-data-dir={work / 'profile-dom'}", f"--log-net-log={netlog}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    shot = work / "page.png"
    subprocess.run(
        [
            exe,
            *FLAGS,
            f"--user-data-dir={work / 'profile-shot'}",
            f"--window-size=1280,{height}",
            f"--screenshot={shot}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return Rendered(dom, shot, page_requests(netlog))


def page_requests(netlog: Path) -> list[str]:
    """URLs the page itself requested (not Chromium's own background requests)."""
    log = json.loads(netlog.read_text())
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    out = []
    for event in log["events"]:
        params = event.get("params") or {}
        started = names.get(event["type"]) == "URL_REQUEST_START_JOB" and "url" in params
        if started and params.get("initiator") != "not an origin":
            out.append(params["url"])
    return out
