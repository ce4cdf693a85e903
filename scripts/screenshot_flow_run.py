"""Screenshot the newest ctpipe cycle's flow-run page (and its gate artifact) in the Prefect UI.

Drives headless Chromium over the DevTools protocol instead of `chromium --screenshot`: the
Prefect UI is a single-page app that keeps polling its API, so a fixed virtual-time budget
either cuts it off before the data arrives or waits forever. Here we wait until the page shows
what we came for (the run's name and every artifact key), then capture.

Standard library plus `websockets` (installed with Prefect); nothing leaves the machine: the
browser resolves no host names but the local ones.

    python scripts/screenshot_flow_run.py --prefect-url http://127.0.0.1:4200 --out-dir docs
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

# Local requests must not go through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
WIDTH, MIN_HEIGHT, MAX_HEIGHT = 1600, 900, 2400
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--disable-breakpad",
    "--disable-domain-reliability", "--no-default-browser-check", "--no-pings",
    "--no-proxy-server", "--hide-scrollbars", "--mute-audio", "--force-device-scale-factor=1",
    # Belt and braces for "nothing leaves the machine": any host name but localhost fails to
    # resolve or connect, whatever Chromium would like to call home to.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    f"--window-size={WIDTH},{MIN_HEIGHT}",
    "--remote-debugging-port=0",
]


# -- the Prefect API ---------------------------------------------------------------------------

def api_post(api: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(f"{api}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with _OPENER.open(request, timeout=30) as response:
        return json.load(response)


def newest_flow_run(api: str, flow_name: str) -> dict[str, Any]:
    runs = api_post(api, "/flow_runs/filter", {
        "flows": {"name": {"any_": [flow_name]}}, "sort": "START_TIME_DESC", "limit": 1})
    if not runs:
        sys.exit(f"no run of flow {flow_name!r} at {api}")
    return runs[0]


def run_artifacts(api: str, flow_run_id: str) -> list[dict[str, Any]]:
    return api_post(api, "/artifacts/filter", {
        "artifacts": {"flow_run_id": {"any_": [flow_run_id]}}, "sort": "CREATED_DESC"})


# -- the browser -------------------------------------------------------------------------------

def find_chromium() -> str:
    # The real binary: Debian's /usr/bin/chromium wrapper injects Google API keys and extensions.
    for candidate in ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "chromium"):
        found = shutil.which(candidate)
        if found:
            return found
    sys.exit("chromium not found: apt-get install -y chromium")


def start_chromium(profile: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    with log.open("wb") as out:
        # Own process group: the browser's helper processes can be stopped together at the end.
        proc = subprocess.Popen([find_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                 "about:blank"], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    # With port 0, Chromium picks a free port and writes it (and the browser's path) here.
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if port_file.exists() and len(port_file.read_text().split()) == 2:
            port, path = port_file.read_text().split()
            return proc, f"ws://127.0.0.1:{port}{path}"
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    sys.exit(f"chromium did not start; see {log}:\n{log.read_text()[-2000:]}")


class Page:
    """One tab, driven through the browser's DevTools websocket (flat session mode)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self._call("Target.attachToTarget",
                                  {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable")

    def _call(self, method: str, params: dict[str, Any] | None = None,
              session: str | None = None) -> dict[str, Any]:
        msg_id = next(self._ids)
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:  # events arrive in between; skip them
            reply = json.loads(self.ws.recv(timeout=120))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._call(method, params, self.session)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression,
                                                "returnByValue": True, "awaitPromise": True})
        return result.get("result", {}).get("value")

    def close_browser(self) -> None:
        # A clean exit flushes and closes the profile before the folder is removed.
        with contextlib.suppress(Exception):
            self._call("Browser.close")

    def resize(self, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def open(self, url: str) -> None:
        self.resize(MIN_HEIGHT)
        self.call("Page.navigate", {"url": url})

    def wait_for_texts(self, texts: list[str], timeout: float) -> None:
        """Until every text is visible on the page: the SPA has fetched and rendered its data."""
        probe = f"(() => {{ const t = document.body ? document.body.innerText : ''; " \
                f"return {json.dumps(texts)}.filter(x => !t.includes(x)); }})()"
        deadline = time.monotonic() + timeout
        missing: list[str] = texts
        while time.monotonic() < deadline:
            missing = self.evaluate(probe) or []
            if not missing:
                self.evaluate("document.fonts.ready.then(() => true)")
                return
            time.sleep(0.5)
        raise TimeoutError(f"page never showed {missing}")

    def content_height(self) -> int:
        """Bottom of the lowest visible leaf element, so the PNG has neither a cut nor a tail."""
        script = """(() => {
            let bottom = 0;
            for (const el of document.querySelectorAll('body *')) {
                if (el.children.length > 0) continue;
                const box = el.getBoundingClientRect();
                if (box.width > 0 && box.height > 0) bottom = Math.max(bottom, box.bottom);
            }
            return Math.ceil(bottom + window.scrollY);
        })()"""
        return int(self.evaluate(script) or 0)

    def screenshot(self, path: Path, height: int, settle: float) -> None:
        self.resize(max(MIN_HEIGHT, min(MAX_HEIGHT, height)))
        time.sleep(settle)  # the run graph (a canvas) redraws after a resize
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        print(f"wrote {path}")


# -- what to capture ---------------------------------------------------------------------------

def capture(page: Page, url: str, texts: list[str], out: Path, timeout: float) -> None:
    print(f"opening {url}")
    page.open(url)
    page.wait_for_texts(texts, timeout)
    page.screenshot(out, page.content_height() + 48, settle=3.0)


def first_heading(markdown: str) -> str:
    for line in markdown.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip().replace("`", "")
    return markdown.strip().splitlines()[0] if markdown.strip() else ""


def shoot(page: Page, base: str, run: dict[str, Any], artifacts: list[dict[str, Any]],
          keys: list[str], out_dir: Path, timeout: float) -> None:
    # The V2 UI (Prefect's default): `?tab=Artifacts` opens the artifacts tab, one card per
    # artifact, under the run's state and task graph.
    capture(page, f"{base}/v2/runs/flow-run/{run['id']}?tab=Artifacts", [run["name"], *keys],
            out_dir / "prefect-flow-run.png", timeout)
    gate = next((a for a in artifacts if (a.get("key") or "").endswith("-gate")), None)
    if gate is not None:
        # The cards show descriptions only; the gate's own page shows its content.
        capture(page, f"{base}/v2/artifacts/artifact/{gate['id']}",
                [first_heading(str(gate["data"]))], out_dir / "prefect-artifacts.png", timeout)


def stop_chromium(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.wait(timeout=15)  # after Browser.close
    except subprocess.TimeoutExpired:
        proc.terminate()
    # Helpers (renderer, GPU, zygote) that outlive the browser would keep writing the profile.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefect-url", default="http://127.0.0.1:4200")
    parser.add_argument("--flow", default="ctpipe-cycle")
    parser.add_argument("--out-dir", type=Path, default=Path("docs"))
    parser.add_argument("--require", nargs="*", default=["validation", "drift", "gate"],
                        help="Artifact key suffixes the run must have.")
    parser.add_argument("--timeout", type=float, default=90)
    args = parser.parse_args()

    base = args.prefect_url.rstrip("/")
    api = f"{base}/api"
    run = newest_flow_run(api, args.flow)
    artifacts = run_artifacts(api, run["id"])
    keys = sorted({a["key"] for a in artifacts if a.get("key")})
    print(f"flow run {run['name']} ({run['id']}), {run['state_type']}, artifacts: {keys}")
    missing = [s for s in args.require if not any(k.endswith(f"-{s}") for k in keys)]
    if missing:
        sys.exit(f"the run has no artifact for {missing}")

    # A new, empty profile each time: no state or first-run leftovers from another session.
    with tempfile.TemporaryDirectory(prefix="ctpipe-chromium-",
                                     ignore_cleanup_errors=True) as tmp:
        proc, endpoint = start_chromium(Path(tmp) / "profile", Path(tmp) / "chromium.log")
        try:
            with connect(endpoint, max_size=None, proxy=None, open_timeout=30) as ws:
                page = Page(ws)
                try:
                    shoot(page, base, run, artifacts, keys, args.out_dir, args.timeout)
                finally:
                    page.close_browser()
        finally:
            stop_chromium(proc)


if __name__ == "__main__":
    main()
