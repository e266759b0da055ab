"""
Start and stop a real Milvus server on loopback, without Docker, for ``make test-server``.

The PyPI package ``milvus`` (2.3.5) ships the Milvus standalone binary (embedded etcd, local storage,
RocksMQ) and a config template. This script installs nothing: ``make test-server`` installs that package
with ``--no-deps`` into ``.venv-milvus-server/`` (its ``client`` extra pins an old pymilvus), and this script
renders the config with every component's ``ip`` set to 127.0.0.1 and the embedded etcd on free ports,
starts the binary in its own process group, waits until ``/healthz`` answers, and stops it again.

Commands (run with any Python 3.10+; the package folder is put on ``sys.path`` here)::

    python ci/milvus_server.py start  [--port 19530] [--data-dir .milvus-server]   # returns once healthy
    python ci/milvus_server.py stop   [--data-dir .milvus-server]
    python ci/milvus_server.py status [--data-dir .milvus-server]
    python ci/milvus_server.py run [--skip-if-unavailable] -- COMMAND...   # exits with COMMAND's code

``start`` writes ``server.json`` (pid, ports, URI, start time, memory) into the data folder; ``run`` starts
the server, sets ``MILVUS_SERVER_URI`` for the command, and stops the server after it. With
``--skip-if-unavailable``, a server that cannot start makes ``run`` print why and exit 0 without running the
command; a command that fails against a running server still fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PACKAGE_DIR = REPO_ROOT / ".venv-milvus-server"
DEFAULT_DATA_DIR = REPO_ROOT / ".milvus-server"
EXPECTED_VERSION = "2.3.5"
# Every component that registers an address in etcd; unset, each picks "the first unicastable address",
# which in a sandbox without a network is nothing the others can reach.
COMPONENTS_WITH_IP = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")
STATE_FILE = "server.json"
START_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 30.0


class ServerUnavailable(RuntimeError):
    """The server could not be started here (package missing, port taken, binary refused to run, ...)."""


def _import_milvus_package(package_dir: Path) -> Any:
    if not (package_dir / "milvus" / "__init__.py").is_file():
        raise ServerUnavailable(
            f"the milvus package is not in {package_dir} "
            f"(install it with: pip install --no-deps --target {package_dir} milvus=={EXPECTED_VERSION})"
        )
    sys.path.insert(0, str(package_dir))
    try:
        import milvus  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(package_dir))
    if milvus.__version__ != EXPECTED_VERSION:
        raise ServerUnavailable(
            f"found milvus {milvus.__version__} in {package_dir}, expected {EXPECTED_VERSION}"
        )
    return milvus


def _state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def _read_state(data_dir: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(_state_path(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own exited child not yet reaped) counts as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _rss_mib(pid: int) -> float | None:
    """Resident memory of the server process in MiB (Linux), or None where /proc is not available."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _healthy(metrics_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/healthz", timeout=2) as response:
            return "OK" in response.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError):
        return False


def _log_tail(data_dir: Path, lines: int = 15) -> str:
    tails = []
    for name in ("milvus-stderr.log", "milvus-stdout.log"):
        path = data_dir / "logs" / name
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            if text:
                tails.append(f"--- {path} (last {len(text)} lines) ---\n" + "\n".join(text))
    return "\n".join(tails)


def _free_port(config: Any, start: int, taken: set[int]) -> int:
    """The first port from ``start`` on that is not ``taken`` and can be bound on 127.0.0.1 now."""
    for port in range(start, start + 1000):
        if port in taken:
            continue
        probe = config.try_bind_port(port)
        if probe is not None:
            probe.close()
            return port
    raise ServerUnavailable(f"no free port on 127.0.0.1 from {start} on")


def _pin_embedded_etcd(data_dir: Path, client_port: int, peer_port: int) -> None:
    """
    Give the embedded etcd its own config: by default it listens on 2379 and 2380 whatever milvus.yaml says,
    so a second server on the machine (another worktree, another CI step) would fail to start.
    """
    etcd_config = data_dir / "configs" / "etcd.yaml"
    client, peer = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    etcd_config.write_text(
        "\n".join(
            [
                "name: milvus-standalone",
                f"listen-client-urls: {client}",
                f"advertise-client-urls: {client}",
                f"listen-peer-urls: {peer}",
                f"initial-advertise-peer-urls: {peer}",
                f"initial-cluster: milvus-standalone={peer}",
                "",
            ]
        ),
        encoding="utf-8",
    )
    milvus_yaml = data_dir / "configs" / "milvus.yaml"
    text = milvus_yaml.read_text(encoding="utf-8")
    embed_line = next(line for line in text.splitlines() if line.strip().startswith("embed: true"))
    text = text.replace(embed_line, f"{embed_line}\n  config:\n    path: {etcd_config}", 1)
    text = text.replace(f"endpoints: localhost:{client_port}", f"endpoints: 127.0.0.1:{client_port}", 1)
    milvus_yaml.write_text(text, encoding="utf-8")


def start(package_dir: Path, data_dir: Path, port: int) -> dict[str, Any]:
    """Start the server and return its state once ``/healthz`` answers OK; raise ServerUnavailable if not."""
    state = _read_state(data_dir)
    if state and _alive(state["pid"]):
        raise ServerUnavailable(f"a server started from {data_dir} is still running (pid {state['pid']})")
    if sys.platform != "linux":
        raise ServerUnavailable(f"the packaged Milvus binary is run here on Linux only, not {sys.platform}")
    milvus = _import_milvus_package(package_dir)

    data_dir.mkdir(parents=True, exist_ok=True)
    # A fresh server each time; the unpacked binaries in bin/ are kept (unpacking takes a few seconds).
    for stale in ("data", "logs", "configs", "run"):
        shutil.rmtree(data_dir / stale, ignore_errors=True)

    config = milvus.MilvusServerConfig(data_dir=str(data_dir), proxy_port=port)
    for component in COMPONENTS_WITH_IP:
        config.set(f"{component}.ip", "127.0.0.1")
    try:
        config.resolve()  # binds each port once to find free ones, writes configs/milvus.yaml
    except RuntimeError as error:
        raise ServerUnavailable(f"cannot configure the server: {error}") from None
    etcd_client_port = int(config.get("etcd_port"))
    taken = {int(config.get(key)) for key in config.configurable_items if key.endswith("_port")}
    etcd_peer_port = _free_port(config, 2380, taken)
    metrics_port = _free_port(config, 9091, taken | {etcd_peer_port})
    _pin_embedded_etcd(data_dir, etcd_client_port, etcd_peer_port)
    unpacking = time.monotonic()
    milvus._initialize_data_files(str(data_dir))  # unpacks the binaries once (~56 MB of lzma), then a no-op
    unpack_seconds = round(time.monotonic() - unpacking, 1)

    binary = data_dir / "bin" / "milvus"
    environment = os.environ.copy()
    environment.update(
        {
            "DEPLOY_MODE": "STANDALONE",
            "METRICS_PORT": str(metrics_port),
            "MILVUS_RUN_DIR": str(data_dir / "run"),
            "LD_LIBRARY_PATH": os.pathsep.join(
                filter(None, [str(binary.parent), os.environ.get("LD_LIBRARY_PATH")])
            ),
        }
    )
    (data_dir / "logs").mkdir(exist_ok=True)
    started = time.monotonic()
    with (
        open(data_dir / "logs" / "milvus-stdout.log", "wb") as stdout,
        open(data_dir / "logs" / "milvus-stderr.log", "wb") as stderr,
    ):
        process = subprocess.Popen(
            [str(binary), "run", "standalone"],
            cwd=data_dir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own process group: stop() ends it and nothing else
        )
    state = {
        "pid": process.pid,
        "port": port,
        "metrics_port": metrics_port,
        "uri": f"http://127.0.0.1:{port}",
        "version": milvus.__version__,
        "data_dir": str(data_dir),
    }
    _state_path(data_dir).write_text(json.dumps(state, indent=2), encoding="utf-8")

    deadline = started + START_TIMEOUT_SECONDS
    while not _healthy(metrics_port):
        if process.poll() is not None:
            raise ServerUnavailable(
                f"the Milvus binary exited with code {process.returncode} while starting\n"
                + _log_tail(data_dir)
            )
        if time.monotonic() > deadline:
            stop(data_dir)
            raise ServerUnavailable(
                f"the server was not healthy after {START_TIMEOUT_SECONDS:.0f} s\n{_log_tail(data_dir)}"
            )
        time.sleep(0.5)
    state["start_seconds"] = round(time.monotonic() - started, 1)
    state["unpack_seconds"] = unpack_seconds
    state["rss_mib_at_start"] = _rss_mib(process.pid)
    _state_path(data_dir).write_text(json.dumps(state, indent=2), encoding="utf-8")
    return state


def stop(data_dir: Path) -> dict[str, Any] | None:
    """Stop the server started from ``data_dir`` (SIGTERM to its process group, SIGKILL after a while)."""
    state = _read_state(data_dir)
    if not state:
        return None
    pid = state["pid"]
    state["rss_mib_at_stop"] = _rss_mib(pid)
    if _alive(pid):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
            state["killed"] = True
    _state_path(data_dir).unlink(missing_ok=True)
    return state


def _describe(state: dict[str, Any]) -> str:
    rss = state.get("rss_mib_at_start")
    memory = f", {rss:.0f} MiB resident" if rss is not None else ""
    return (
        f"Milvus {state['version']} at {state['uri']} "
        f"(pid {state['pid']}, binaries unpacked in {state['unpack_seconds']} s, "
        f"healthy {state['start_seconds']} s after launch{memory})"
    )


def run(package_dir: Path, data_dir: Path, port: int, command: list[str], skip_if_unavailable: bool) -> int:
    """Start the server, run ``command`` with ``MILVUS_SERVER_URI`` set, stop the server; its exit code."""
    try:
        state = start(package_dir, data_dir, port)
    except ServerUnavailable as reason:
        print(f"milvus_server: the Milvus server cannot start here: {reason}", file=sys.stderr)
        if skip_if_unavailable:
            print("milvus_server: SKIPPED the tests that need a Milvus server", file=sys.stderr)
            return 0
        return 1
    print(f"milvus_server: {_describe(state)}", flush=True)
    try:
        environment = dict(os.environ, MILVUS_SERVER_URI=state["uri"])
        return subprocess.call(command, env=environment)
    finally:
        stopped = stop(data_dir)
        if stopped:
            rss = stopped.get("rss_mib_at_stop")
            memory = f"; {rss:.0f} MiB resident before stopping" if rss is not None else ""
            print(f"milvus_server: stopped{memory}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[1], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", choices=["start", "stop", "status", "run"])
    parser.add_argument(
        "--package-dir", type=Path, default=DEFAULT_PACKAGE_DIR, help="where milvus==2.3.5 is"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="config, logs, data, pid file"
    )
    parser.add_argument("--port", type=int, default=19530, help="the gRPC/HTTP port of the server (proxy)")
    parser.add_argument(
        "--skip-if-unavailable", action="store_true", help="run: exit 0 if the server cannot start"
    )
    arguments = sys.argv[1:] if argv is None else argv
    command = arguments[arguments.index("--") + 1 :] if "--" in arguments else []
    options = parser.parse_args(arguments[: len(arguments) - len(command) - 1] if command else arguments)
    data_dir = options.data_dir.resolve()
    package_dir = options.package_dir.resolve()

    if options.command == "start":
        try:
            state = start(package_dir, data_dir, options.port)
        except ServerUnavailable as reason:
            print(f"milvus_server: the Milvus server cannot start here: {reason}", file=sys.stderr)
            return 1
        print(f"milvus_server: {_describe(state)}")
        print(f"MILVUS_SERVER_URI={state['uri']}")
        return 0
    if options.command == "stop":
        stopped = stop(data_dir)
        print("milvus_server: stopped" if stopped else f"milvus_server: no server recorded in {data_dir}")
        return 0
    if options.command == "status":
        recorded = _read_state(data_dir)
        if recorded and _alive(recorded["pid"]) and _healthy(recorded["metrics_port"]):
            rss = _rss_mib(recorded["pid"])
            resident = f"{rss or 0:.0f} MiB resident"
            print(f"milvus_server: running, {recorded['uri']} (pid {recorded['pid']}, {resident})")
            return 0
        print("milvus_server: not running")
        return 1
    if not command:
        parser.error("run needs a command after --")
    return run(package_dir, data_dir, options.port, command, options.skip_if_unavailable)


if __name__ == "__main__":
    sys.exit(main())
