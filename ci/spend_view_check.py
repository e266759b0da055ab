"""
``make check-spend-view``: the spend view in a real browser, against a real Airflow API server.

In a throwaway ``AIRFLOW_HOME`` under ``.spend-view/`` (SimpleAuthManager with one user whose password this
script writes), with the bundled Gemini emulator and a Milvus Lite file, it runs ``airflow dags test`` of
``example_gemini_milvus_ingest`` once and of ``example_gemini_milvus_reembed`` twice (one file edited in
between, so the second run is incremental). It then starts ``airflow api-server`` on loopback, which loads
the plugin through the installed package's ``airflow.plugins`` entry point, and drives headless Chromium
over the DevTools protocol (a websocket; ``websockets`` comes with google-genai):

* without a login the page is refused (401);
* signed in (the UI's ``_token`` cookie, from ``POST /auth/token``), ``/gemini-milvus/spend`` shows the
  texts embedded, tokens, cost, rows written and the incremental run's not re-sent documents that the
  runs' own return values hold (read here from the metadata database);
* inside the Airflow UI (``/plugin/gemini-milvus-spend``, the page in Airflow's iframe) it shows the same,
  and ``--screenshot PATH`` saves that.

Chromium is found on ``PATH`` (``chromium``, ``chromium-browser``, ``google-chrome``) or in ``CHROMIUM``;
``make check-spend-view`` installs Debian's package when it can and skips, saying why, when it cannot.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
WORK_DIR = REPO_ROOT / ".spend-view"
AIRFLOW_HOME = WORK_DIR / "airflow_home"
DOCS_DIR = WORK_DIR / "docs"
LOG_FILE = WORK_DIR / "check.log"
USER = "admin"
INGEST = ("example_gemini_milvus_ingest", "embed_documents", "load_into_milvus")
REEMBED = ("example_gemini_milvus_reembed", "embed_changed_documents", "upsert_into_milvus")
PAGE = "/gemini-milvus/spend"
UI_PAGE = "/plugin/gemini-milvus-spend"
WAIT_SECONDS = 90.0


class CheckFailed(AssertionError):
    """The page did not show what the runs did."""


def find_chromium() -> str | None:
    named = os.environ.get("CHROMIUM")
    if named:
        return shutil.which(named) or (named if Path(named).is_file() else None)
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_docs(version: int) -> None:
    """Three small Markdown files; version 2 edits one of them."""
    DOCS_DIR.mkdir(parents=True, exist_ok=True)
    pages = {
        "milvus.md": "# Milvus\n\nMilvus is an open-source vector database built for similarity search.\n",
        "airflow.md": "# Airflow\n\nApache Airflow schedules and monitors workflows written in Python.\n",
        "gemini.md": "# Gemini\n\nGemini embeddings turn text into vectors for semantic search.\n",
    }
    if version == 2:
        pages["gemini.md"] += "\n## Batch mode\n\nThe Batch API embeds at half the price, within a day.\n"
    for name, text in pages.items():
        (DOCS_DIR / name).write_text(text, encoding="utf-8")


def airflow_env(gemini_connection: dict[str, Any], port: int) -> dict[str, str]:
    env = os.environ.copy()
    env.update(
        {
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(AIRFLOW_HOME / "passwords.json"),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW_CONN_GEMINI_DEFAULT": json.dumps(gemini_connection),
            "AIRFLOW_CONN_MILVUS_DEFAULT": json.dumps(
                {"conn_type": "milvus", "host": str(WORK_DIR / "milvus.db")}
            ),
            "GEMINI_MILVUS_DOCS_URI": DOCS_DIR.as_uri(),
        }
    )
    return env


def run_logged(command: list[str], env: dict[str, str]) -> None:
    with LOG_FILE.open("a", encoding="utf-8") as log:
        log.write(f"\n$ {' '.join(command)}\n")
        log.flush()
        result = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise CheckFailed(f"`{' '.join(command[2:])}` failed (exit {result.returncode}); log: {LOG_FILE}")


def run_dags(env: dict[str, str]) -> None:
    airflow = [sys.executable, "-m", "airflow"]
    run_logged([*airflow, "db", "migrate"], env)
    run_logged([*airflow, "dags", "test", INGEST[0]], env)
    write_docs(1)
    run_logged([*airflow, "dags", "test", REEMBED[0]], env)
    write_docs(2)
    run_logged([*airflow, "dags", "test", REEMBED[0]], env)


def expected_runs(env: dict[str, str]) -> list[dict[str, Any]]:
    """What each run's tasks returned, read back from the metadata database (not through the view)."""
    os.environ.update({key: env[key] for key in ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER")})
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    from airflow_provider_gemini_milvus.testing.xcom import xcom_return_value

    runs = []
    for dag_id, embed_task, load_task in (INGEST, REEMBED):
        with create_session() as session:
            run_ids = [run.run_id for run in session.query(DagRun).filter(DagRun.dag_id == dag_id)]
        for run_id in run_ids:
            stats = xcom_return_value(dag_id, embed_task, run_id)["stats"]
            load = xcom_return_value(dag_id, load_task, run_id)
            runs.append({"dag_id": dag_id, "run_id": run_id, "stats": stats, "load": load})
    if len(runs) != 3:
        raise CheckFailed(f"expected 3 DAG runs, found {len(runs)}")
    return runs


class DevTools:
    """A small Chrome DevTools protocol client over one websocket (flat sessions)."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self._stack = contextlib.ExitStack()
        self.socket = self._stack.enter_context(connect(url, max_size=64 * 1024 * 1024, open_timeout=30))
        self.last_id = 0

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        message: dict[str, Any] = {"id": self.last_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        while True:
            answer = json.loads(self.socket.recv(timeout=WAIT_SECONDS))
            if answer.get("id") == self.last_id:
                if "error" in answer:
                    raise CheckFailed(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result

    def close(self) -> None:
        self._stack.close()


class Browser:
    """Headless Chromium with its DevTools port on loopback."""

    def __init__(self, executable: str) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="spend-view-chromium-"))
        command = [
            executable,
            "--headless=new",
            "--no-sandbox",  # root in CI
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1280,860",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}",
            "about:blank",
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + WAIT_SECONDS
        while not port_file.is_file() or len(port_file.read_text().splitlines()) < 2:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise CheckFailed(f"Chromium did not start ({executable})")
            time.sleep(0.2)
        port, path = port_file.read_text().splitlines()[:2]
        self.devtools = DevTools(f"ws://127.0.0.1:{port}{path}")

    def new_page(self, *, cookie: tuple[str, str] | None) -> str:
        """A tab in a fresh browser context (no cookies but ``cookie``); returns its session id."""
        context = self.devtools.call("Target.createBrowserContext")["browserContextId"]
        target = self.devtools.call("Target.createTarget", url="about:blank", browserContextId=context)
        session = self.devtools.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        session_id: str = session["sessionId"]
        self.devtools.call("Page.enable", session_id)
        self.devtools.call("Runtime.enable", session_id)
        self.devtools.call(
            "Emulation.setDeviceMetricsOverride",
            session_id,
            width=1280,
            height=860,
            deviceScaleFactor=1,
            mobile=False,
        )
        if cookie is not None:
            url, token = cookie
            self.devtools.call("Network.enable", session_id)
            self.devtools.call("Network.setCookie", session_id, name="_token", value=token, url=url)
        return session_id

    def evaluate(self, session: str, expression: str, context: int | None = None) -> Any:
        params: dict[str, Any] = {"expression": expression, "returnByValue": True}
        if context is not None:
            params["contextId"] = context
        result = self.devtools.call("Runtime.evaluate", session, **params)
        if "exceptionDetails" in result:
            raise CheckFailed(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, session: str, expression: str, what: str, *, frame: bool = False) -> Any:
        """Poll until ``expression`` is truthy, in the page or (``frame``) in its first iframe."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                context = self.frame_context(session) if frame else None
                value = self.evaluate(session, expression, context) if not frame or context else None
            except CheckFailed:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                body = self.evaluate(session, "document.body ? document.body.innerText.slice(0, 500) : ''")
                raise CheckFailed(f"timed out waiting for {what}; the page shows: {body!r}")
            time.sleep(0.5)

    def frame_context(self, session: str) -> int | None:
        tree = self.devtools.call("Page.getFrameTree", session)["frameTree"]
        children = [child["frame"] for child in tree.get("childFrames", [])]
        spend = [frame for frame in children if PAGE in frame.get("url", "")]
        if not spend:
            return None
        world = self.devtools.call("Page.createIsolatedWorld", session, frameId=spend[0]["id"])
        context: int = world["executionContextId"]
        return context

    def screenshot(self, session: str, path: Path) -> int:
        import base64

        data = self.devtools.call("Page.captureScreenshot", session, format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path.stat().st_size

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the browser may already be gone
            self.devtools.call("Browser.close")
        self.devtools.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def start_api_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    log = LOG_FILE.open("a", encoding="utf-8")
    command = [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)]
    log.write(f"\n$ {' '.join(command)}\n")
    log.flush()
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 2 * WAIT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CheckFailed(f"the API server exited ({server.returncode}); log: {LOG_FILE}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5):
                return server
        except (urllib.error.URLError, OSError):
            time.sleep(1)
    stop(server)
    raise CheckFailed(f"the API server did not answer in time; log: {LOG_FILE}")


def stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def login(base: str, password: str) -> str:
    body = json.dumps({"username": USER, "password": password}).encode()
    request = urllib.request.Request(
        f"{base}/auth/token", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        token: str = json.load(answer)["access_token"]
        return token


_READ_PAGE = """JSON.stringify({
  totals: Object.fromEntries([...document.querySelectorAll('#totals .card')].map(
    card => [card.dataset.col, card.querySelector('.value').innerText])),
  runs: [...document.querySelectorAll('#runs tbody tr[data-run]')].map(row => Object.assign(
    {run: row.dataset.run, dag: row.dataset.dag, collection: row.dataset.collection},
    Object.fromEntries([...row.querySelectorAll('td[data-col]')].map(td => [td.dataset.col, td.innerText])))),
  text: document.body.innerText
})"""


def check_page(shown: dict[str, Any], runs: list[dict[str, Any]], where: str) -> None:
    from airflow_provider_gemini_milvus.plugins.spend_page import format_count, format_usd

    def expect(what: str, got: Any, wanted: Any) -> None:
        if got != wanted:
            raise CheckFailed(f"{where}: {what} shows {got!r}, the runs returned {wanted!r}")

    stats = [run["stats"] for run in runs]
    expect("texts embedded", shown["totals"].get("texts"), format_count(sum(s["embedded"] for s in stats)))
    expect("tokens", shown["totals"].get("tokens"), format_count(sum(s["estimated_tokens"] for s in stats)))
    expect(
        "sync cost", shown["totals"].get("sync_usd"), format_usd(sum(s["estimated_cost_usd"] for s in stats))
    )
    rows = {row["run"]: row for row in shown["runs"]}
    for run in runs:
        row = rows.get(run["run_id"])
        if row is None:
            raise CheckFailed(f"{where}: run {run['run_id']} of {run['dag_id']} is not in the table")
        s, load = run["stats"], run["load"]
        expect(f"{run['run_id']} collection", row["collection"], load["collection"])
        expect(f"{run['run_id']} texts", row["texts"], format_count(s["embedded"]))
        expect(f"{run['run_id']} tokens", row["tokens"], format_count(s["estimated_tokens"]))
        expect(f"{run['run_id']} cost", row["cost_usd"], format_usd(s["estimated_cost_usd"]))
        expect(f"{run['run_id']} written", row["written"], format_count(load["written"]))
        expect(f"{run['run_id']} deleted", row["deleted"], format_count(load["deleted"]))
        expect(
            f"{run['run_id']} not re-sent",
            row["not_resent"],
            format_count(s["unchanged"] + s["metadata_only"]),
        )
    incremental = [run for run in runs if run["stats"]["unchanged"] > 0]
    if not incremental:
        raise CheckFailed("the second reembed run re-sent every document: the check needs an incremental run")
    for run in incremental:
        if rows[run["run_id"]]["saved_usd"] in ("—", format_usd(0.0)):
            raise CheckFailed(f"{where}: the incremental run {run['run_id']} shows no saving")
    for secret_like in ("gemini-emulator-key", "AIzaSy", "Maida Vale"):
        if secret_like in shown["text"]:
            raise CheckFailed(f"{where}: the page shows {secret_like!r}")


def check_in_browser(
    chromium: str, base: str, token: str, runs: list[dict[str, Any]], shot: Path | None
) -> None:
    browser = Browser(chromium)
    try:
        anonymous = browser.new_page(cookie=None)
        browser.devtools.call("Page.navigate", anonymous, url=f"{base}{PAGE}")
        refused = browser.wait_for(anonymous, "document.body && document.body.innerText", "the refusal")
        if "Not authenticated" not in refused:
            raise CheckFailed(f"without a login the page answered {refused[:200]!r}")
        print("spend view: refused without a login (401 Not authenticated)")

        page = browser.new_page(cookie=(base, token))
        browser.devtools.call("Page.navigate", page, url=f"{base}{PAGE}")
        browser.wait_for(
            page, "document.querySelectorAll('#runs tr[data-run]').length >= 3", "the runs table"
        )
        check_page(json.loads(browser.evaluate(page, _READ_PAGE)), runs, PAGE)
        print(f"spend view: {PAGE} shows the numbers of the {len(runs)} runs")

        ui = browser.new_page(cookie=(base, token))
        browser.devtools.call("Page.navigate", ui, url=f"{base}{UI_PAGE}")
        browser.wait_for(
            ui,
            "document.querySelectorAll('#runs tr[data-run]').length >= 3",
            "the view in the UI",
            frame=True,
        )
        context = browser.frame_context(ui)
        check_page(json.loads(browser.evaluate(ui, _READ_PAGE, context)), runs, UI_PAGE)
        print(f"spend view: the Airflow UI's {UI_PAGE} shows it in its frame, with the same numbers")
        if shot is not None:
            time.sleep(1.0)  # the UI's navigation fonts and icons settle
            size = browser.screenshot(ui, shot)
            print(f"spend view: screenshot {shot} ({size // 1024} KB)")
    finally:
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--screenshot", type=Path, help="save the Airflow UI page with the view here")
    parser.add_argument("--skip-if-no-chromium", action="store_true", help="exit 0 when Chromium is missing")
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        message = "check-spend-view: SKIPPED: no Chromium found (install Debian's chromium, or set CHROMIUM)"
        print(message)
        return 0 if args.skip_if_no_chromium else 1
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    AIRFLOW_HOME.mkdir(parents=True)
    password = secrets.token_urlsafe(16)
    (AIRFLOW_HOME / "passwords.json").write_text(json.dumps({USER: password}), encoding="utf-8")
    from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator

    port = free_port()
    emulator = GeminiEmulator().start()
    try:
        connection = {
            "conn_type": "gemini",
            "password": emulator.api_key,
            "extra": {"base_url": emulator.base_url},
        }
        env = airflow_env(connection, port)
        print(f"spend view: running the example DAGs (log: {LOG_FILE}) ...")
        run_dags(env)
    finally:
        emulator.stop()
    runs = expected_runs(env)
    server = start_api_server(env, port)
    try:
        base = f"http://127.0.0.1:{port}"
        check_in_browser(chromium, base, login(base, password), runs, args.screenshot)
    finally:
        stop(server)
    print("check-spend-view: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
