"""
This provider side by side with what a user would pick instead, on one corpus (issue 20, part 3).

The same 4,000 generated documents (text plus three metadata keys), 768 dims, go through:

- ``langchain``: LangChain's indexing API (``langchain_core.indexing.index``) with
  ``GoogleGenerativeAIEmbeddings`` (langchain-google-genai), the ``Milvus`` vector store (langchain-milvus)
  and a ``SQLRecordManager`` on a local SQLite file, ``cleanup="full"``: the mode that removes documents
  that vanished from the source (``"incremental"`` only removes older versions of the sources passed in the
  same run, so a deleted document would stay);
- ``llamaindex``: LlamaIndex's ``IngestionPipeline`` with ``GoogleGenAIEmbedding``
  (llama-index-embeddings-google-genai), ``MilvusVectorStore`` and a persisted ``SimpleDocumentStore``,
  ``docstore_strategy=UPSERTS_AND_DELETE``;
- ``seed``: pymilvus-model's ``GeminiEmbeddingFunction`` and a ``MilvusClient.upsert`` loop (chunks of 100),
  which, to drop vanished documents, lists the stored ids and deletes the missing ones;
- ``provider (DAG)``: the README Quickstart DAG (embed >> load, incremental, ``delete_missing=True``) under
  ``dag.test()``, and ``provider (operators)``: its two operators called directly;
- ``empty DAG (Airflow)``: the same DAG shape with tasks that do nothing, under ``dag.test()``: what Airflow
  itself costs (its in-process API server, the metadata DB, the task runner) before any provider work.

Each peer runs from its own virtualenv (``.venv-bench/<peer>``, installed by ``make bench`` from the pinned
``requirements-<peer>.txt`` beside this file), the provider from the project's ``.venv``; each in its own
Milvus Lite file, each run in a fresh child process. All talk to ONE emulator process
(``emulator_control.py``) at 300 ms latency through their SDK's base URL option.

Per peer: a first run, then a second after 1% text edits, 1% metadata-only edits and 1% deletes. Measured:
wall time of each run (the child process from start to exit), texts the emulator embedded, rows in the
collection after (3,960 when correct), peak RSS of the child (``os.wait4``'s ``ru_maxrss``: the child or
any process it waited for, whichever peaked highest), and the local overhead (the same runs against the
emulator at 0 ms latency). Rounds are interleaved (peer order rotated each round); times are medians.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/peers/run_peers.py [--quick]`` once the peer
virtualenvs exist: ``make bench-peers`` builds them).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VENVS = REPO / ".venv-bench"
API_KEY = "bench-peers-key"
DIM = 768
COLLECTION = "docs"
LATENCY_SECONDS = 0.3
EDIT_SHARE = 100  # one document in 100 of each kind: text edit, metadata-only edit, delete

PEER_PACKAGES = {
    "langchain": [
        "langchain-core",
        "langchain-classic",
        "langchain-google-genai",
        "langchain-milvus",
        "google-genai",
        "pymilvus",
        "milvus-lite",
    ],
    "llamaindex": [
        "llama-index-core",
        "llama-index-embeddings-google-genai",
        "llama-index-vector-stores-milvus",
        "google-genai",
        "pymilvus",
        "milvus-lite",
    ],
    "seed": ["pymilvus-model", "pymilvus", "google-genai", "milvus-lite"],
    "provider": [
        "airflow-provider-gemini-milvus",
        "apache-airflow",
        "google-genai",
        "pymilvus",
        "milvus-lite",
    ],
}
LABELS = {
    "langchain": "LangChain index()",
    "llamaindex": "LlamaIndex pipeline",
    "seed": "seed + upsert loop",
    "provider-dag": "provider (DAG)",
    "provider-operators": "provider (operators)",
    "airflow-floor": "empty DAG (Airflow)",
}
PEERS = ("langchain", "llamaindex", "seed")
CONTENDERS = (*PEERS, "provider-dag", "provider-operators", "airflow-floor")

WORDS = (
    "vector",
    "database",
    "airflow",
    "gemini",
    "embedding",
    "milvus",
    "index",
    "search",
    "query",
    "schedule",
    "task",
    "operator",
    "hook",
    "collection",
    "partition",
    "segment",
    "document",
    "metadata",
    "pipeline",
    "batch",
    "upsert",
    "delete",
    "filter",
    "recall",
    "latency",
    "throughput",
    "cluster",
    "shard",
    "replica",
    "model",
    "token",
    "quota",
    "request",
    "answer",
    "retrieval",
    "ranking",
    "semantic",
    "text",
    "storage",
    "parquet",
    "manifest",
    "stage",
    "worker",
    "executor",
    "trigger",
    "asset",
    "lineage",
    "dimension",
    "cosine",
    "distance",
)
CATEGORIES = ("guide", "reference", "tutorial", "faq", "changelog", "blog", "spec", "note")


# -- the corpus -------------------------------------------------------------------------------------------


def corpus(documents: int, *, second_run: bool) -> list[dict[str, Any]]:
    """
    The deterministic corpus; the second run's has 1% of the texts edited, 1% of the metadata edited and
    1% of the documents deleted (disjoint sets).
    """
    rng = random.Random(20)
    rows: list[dict[str, Any]] = []
    for i in range(documents):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(35, 60)))
        row: dict[str, Any] = {
            "id": f"doc-{i:05d}",
            "text": f"Document {i} about {CATEGORIES[i % len(CATEGORIES)]}: {words}.",
            "category": CATEGORIES[i % len(CATEGORIES)],
            "year": 2015 + i % 10,
            "author": f"author-{i % 97}",
        }
        if second_run:
            kind = i % EDIT_SHARE
            if kind == 1:
                row["text"] += " Edited for the second run."
            elif kind == 2:
                row["year"] += 1
                row["author"] += "-reviewed"
            elif kind == 3:
                continue
        rows.append(row)
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# -- the emulator process ---------------------------------------------------------------------------------


class Emulator:
    """``emulator_control.py`` in a child process, steered over its stdin."""

    def __init__(self, latency: float) -> None:
        command = [sys.executable, str(HERE / "emulator_control.py"), "--api-key", API_KEY]
        self.process = subprocess.Popen(
            [*command, "--latency", str(latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.base_url: str = self._read()["base_url"]

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the emulator process stopped")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def command(self, line: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self._read()

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- running one child ------------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    peak_rss: int
    texts: int
    requests: int
    max_in_flight: int


@dataclass
class Figures:
    first: list[Run] = field(default_factory=list)
    second: list[Run] = field(default_factory=list)
    first_fast: list[Run] = field(default_factory=list)
    second_fast: list[Run] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    failure: str | None = None


def timed_child(command: list[str], env: dict[str, str], log: Path) -> tuple[float, int]:
    """Run ``command`` to its end; its wall time and peak RSS (bytes). Raises on a non-zero exit."""
    with log.open("w") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(command[1:3])} exited {process.returncode}:\n{tail}")
    return seconds, usage.ru_maxrss * 1024  # kilobytes on Linux


def runs_in_project_venv(contender: str) -> bool:
    return contender.startswith(("provider", "airflow"))


def python_of(contender: str) -> str:
    if runs_in_project_venv(contender):
        return sys.executable
    return str(VENVS / contender / "bin" / "python")


class Bench:
    def __init__(self, tmp: Path, emulator: Emulator, corpora: tuple[Path, Path]) -> None:
        self.tmp = tmp
        self.emulator = emulator
        self.corpora = corpora
        self.airflow_template = tmp / "airflow-home-template"
        # A DAGs folder per DAG, holding it alone: dag.test() parses every file of the folder.
        self.dags_folders = {}
        for contender, dag_file in (("provider-dag", "quickstart_dag.py"), ("airflow-floor", "empty_dag.py")):
            folder = tmp / f"dags-{contender}"
            folder.mkdir()
            shutil.copy(HERE / dag_file, folder / dag_file)
            self.dags_folders[contender] = folder

    def base_env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW", "GOOGLE_", "GEMINI_", "VIRTUAL_ENV"))
        }
        env["BENCH_GEMINI_API_KEY"] = API_KEY
        env["BENCH_GEMINI_BASE_URL"] = self.emulator.base_url
        env["BENCH_DIM"] = str(DIM)
        env["BENCH_COLLECTION"] = COLLECTION
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def provider_env(self, contender: str, workdir: Path) -> dict[str, str]:
        env = self.base_env()
        home = workdir / "airflow_home"
        if not home.exists():
            shutil.copytree(self.airflow_template, home)
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folders.get(contender, self.tmp)),
                "AIRFLOW_CONN_GEMINI_DEFAULT": json.dumps(
                    {
                        "conn_type": "gemini",
                        "password": API_KEY,
                        "extra": {"base_url": self.emulator.base_url},
                    }
                ),
                "AIRFLOW_CONN_MILVUS_DEFAULT": json.dumps(
                    {"conn_type": "milvus", "host": str(workdir / "milvus.db")}
                ),
            }
        )
        return env

    def migrate_airflow(self) -> None:
        """One migrated metadata DB, copied into each DAG run's ``AIRFLOW_HOME`` (not timed)."""
        self.airflow_template.mkdir()
        env = self.base_env()
        env["AIRFLOW_HOME"] = str(self.airflow_template)
        env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True
        )

    def command(self, contender: str, workdir: Path, corpus_path: Path) -> list[str]:
        if runs_in_project_venv(contender):
            mode = contender.split("-", 1)[1]
            return [sys.executable, str(HERE / "peer_provider.py"), mode, str(corpus_path)]
        return [python_of(contender), str(HERE / f"peer_{contender}.py"), str(workdir), str(corpus_path)]

    def one_run(self, contender: str, workdir: Path, corpus_path: Path, label: str) -> Run:
        env = self.provider_env(contender, workdir) if runs_in_project_venv(contender) else self.base_env()
        self.emulator.command("reset")
        seconds, peak = timed_child(
            self.command(contender, workdir, corpus_path), env, workdir / f"{label}.log"
        )
        stats = self.emulator.command("stats")
        return Run(seconds, peak, stats["texts"], stats["requests"], stats["max_in_flight"])

    def count_rows(self, contender: str, workdir: Path) -> int:
        db = workdir / "milvus.db"
        completed = subprocess.run(
            [python_of(contender), str(HERE / "count_rows.py"), str(db), COLLECTION],
            capture_output=True,
            text=True,
            check=False,
            env=self.base_env(),
        )
        if completed.returncode != 0:
            raise RuntimeError(f"counting the rows of {contender} failed:\n{completed.stderr[-2000:]}")
        return int(completed.stdout.strip().splitlines()[-1])

    def pair(self, contender: str, figures: Figures, round_name: str, *, fast: bool) -> None:
        workdir = self.tmp / f"{contender}-{round_name}"
        workdir.mkdir()
        first = self.one_run(contender, workdir, self.corpora[0], "first")
        second = self.one_run(contender, workdir, self.corpora[1], "second")
        if fast:
            figures.first_fast.append(first)
            figures.second_fast.append(second)
        else:
            figures.first.append(first)
            figures.second.append(second)
            if contender != "airflow-floor":
                figures.rows.append(self.count_rows(contender, workdir))
        shutil.rmtree(workdir, ignore_errors=True)


def versions(contender: str) -> dict[str, str]:
    names = PEER_PACKAGES["provider" if runs_in_project_venv(contender) else contender]
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try: out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    completed = subprocess.run(
        [python_of(contender), "-c", code, *names], capture_output=True, text=True, check=True
    )
    found: dict[str, str] = json.loads(completed.stdout)
    return found


def peak_rss_of(command: list[str]) -> int:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss * 1024


def airflow_import_cost() -> int:
    """Peak RSS of ``import airflow.sdk`` in .venv minus that of a bare interpreter (median of 3)."""
    bare = statistics.median(peak_rss_of([sys.executable, "-c", "pass"]) for _ in range(3))
    sdk = statistics.median(peak_rss_of([sys.executable, "-c", "import airflow.sdk"]) for _ in range(3))
    return int(sdk - bare)


# -- reporting --------------------------------------------------------------------------------------------


def median_seconds(runs: list[Run]) -> float:
    return statistics.median(run.seconds for run in runs) if runs else float("nan")


def summary(figures: Figures) -> dict[str, Any]:
    runs = figures.first + figures.second
    return {
        "first": median_seconds(figures.first),
        "second": median_seconds(figures.second),
        "first_texts": figures.first[-1].texts if figures.first else None,
        "second_texts": figures.second[-1].texts if figures.second else None,
        "first_requests": figures.first[-1].requests if figures.first else None,
        "second_requests": figures.second[-1].requests if figures.second else None,
        "in_flight": max((run.max_in_flight for run in runs), default=None),
        "rows": figures.rows[-1] if figures.rows else None,
        "rows_all": figures.rows,
        "peak_mb": max((run.peak_rss for run in runs), default=0) / 2**20 if runs else None,
        "first_local": median_seconds(figures.first_fast) if figures.first_fast else None,
        "second_local": median_seconds(figures.second_fast) if figures.second_fast else None,
        "first_all": [round(run.seconds, 2) for run in figures.first],
        "second_all": [round(run.seconds, 2) for run in figures.second],
        "failure": figures.failure,
    }


def fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value:,}{unit}"


ROWS = (
    ("first run, wall", "first", " s"),
    ("second run, wall", "second", " s"),
    ("texts sent, first run", "first_texts", ""),
    ("texts sent, second run", "second_texts", ""),
    ("embed requests, first / second", None, ""),
    ("most requests in flight", "in_flight", ""),
    ("rows after the second run", "rows", ""),
    ("peak RSS", "peak_mb", " MB"),
    ("local overhead, first run (0 ms)", "first_local", " s"),
    ("local overhead, second run (0 ms)", "second_local", " s"),
)


def cell(result: dict[str, Any], key: str | None, unit: str) -> str:
    if result["failure"]:
        return "failed"
    if key is None:
        return f"{fmt(result['first_requests'])} / {fmt(result['second_requests'])}"
    digits = 0 if key == "peak_mb" else 1
    return fmt(result[key], unit, digits)


def print_table(results: dict[str, dict[str, Any]], contenders: list[str]) -> None:
    width = 34
    print(f"{'':{width}}" + "".join(f"{LABELS[name]:>22}" for name in contenders))
    for label, key, unit in ROWS:
        print(f"{label:{width}}" + "".join(f"{cell(results[name], key, unit):>22}" for name in contenders))


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def ratios(results: dict[str, dict[str, Any]], peers: list[str], mine: dict[str, Any], key: str) -> str:
    """Each peer's figure over the provider's."""
    return ", ".join(f"{LABELS[peer]} {results[peer][key] / mine[key]:.2f}x" for peer in peers)


def print_targets(results: dict[str, dict[str, Any]], documents: int, airflow_mb: float) -> None:
    peers = [name for name in PEERS if name in results and not results[name]["failure"]]
    expected = documents - documents // EDIT_SHARE
    for provider in ("provider-dag", "provider-operators"):
        mine = results.get(provider)
        if not mine or mine["failure"] or not peers:
            continue
        as_dag = provider == "provider-dag"
        print(f"\n{LABELS[provider]}{'' if as_dag else ' (for reference: the targets are for the DAG)'}:")

        first_ok = all(results[p]["first"] / mine["first"] >= 3 for p in peers)
        second_ok = all(results[p]["second"] / mine["second"] > 1 for p in peers)
        print(
            f"  first run   {mine['first']:6.1f} s   peer/provider: {ratios(results, peers, mine, 'first')}"
        )
        print(f"              target >= 3x against every peer: {verdict(first_ok)}")
        print(
            f"  second run  {mine['second']:6.1f} s   peer/provider: {ratios(results, peers, mine, 'second')}"
        )
        print(f"              target > 1x against every peer (LlamaIndex above all): {verdict(second_ok)}")
        for run in ("first", "second"):
            texts = mine[f"{run}_texts"]
            others = ", ".join(f"{LABELS[p]} {results[p][f'{run}_texts']:,}" for p in peers)
            ok = all(texts <= results[p][f"{run}_texts"] for p in peers)
            print(
                f"  texts sent, {run} run  {texts:,}   peers: {others}   target <= every peer: {verdict(ok)}"
            )
        rows_ok = all(rows == expected for rows in mine["rows_all"])
        print(f"  rows after  {mine['rows']:,}   target {expected:,}: {verdict(rows_ok)}")
        lightest = min(peers, key=lambda p: results[p]["peak_mb"])
        budget = results[lightest]["peak_mb"] + airflow_mb
        ratio = mine["peak_mb"] / results[lightest]["peak_mb"]
        print(
            f"  peak RSS    {mine['peak_mb']:.0f} MB   {ratio:.2f}x the lightest peer ({LABELS[lightest]} "
            f"{results[lightest]['peak_mb']:.0f} MB); target <= {budget:.0f} MB (lightest + Airflow import "
            f"{airflow_mb:.0f} MB): {verdict(mine['peak_mb'] <= budget)}"
        )
        floor = results.get("airflow-floor")
        if as_dag and floor and not floor["failure"]:
            print_floor(results, peers, mine, floor, lightest)
        if mine["first_local"] is not None:
            seed = results.get("seed")
            if seed and not seed["failure"] and seed["first_local"] is not None:
                print(
                    f"  local overhead (0 ms emulator) first run {mine['first_local']:.1f} s vs the seed's "
                    f"{seed['first_local']:.1f} s ({mine['first_local'] / seed['first_local']:.2f}x; "
                    f"target <= 1x): {verdict(mine['first_local'] <= seed['first_local'])}"
                )


def print_floor(
    results: dict[str, dict[str, Any]],
    peers: list[str],
    mine: dict[str, Any],
    floor: dict[str, Any],
    lightest: str,
) -> None:
    """The provider's DAG with what Airflow's ``dag.test()`` costs by itself (the empty DAG) taken out."""
    print(
        f"  Airflow's own dag.test() (the empty DAG): first run {floor['first']:.1f} s, second "
        f"{floor['second']:.1f} s, peak RSS {floor['peak_mb']:.0f} MB; the provider's DAG less that:"
    )
    for run in ("first", "second"):
        work = mine[run] - floor[run]
        each = ", ".join(f"{LABELS[p]} {results[p][run] / work:.2f}x" for p in peers)
        print(f"    {run} run  {work:6.1f} s   peer/provider: {each}")
    extra = mine["peak_mb"] - floor["peak_mb"]
    print(
        f"    peak RSS above the empty DAG's: {extra:.0f} MB (the lightest peer, {LABELS[lightest]}: "
        f"{results[lightest]['peak_mb']:.0f} MB in all)"
    )


def print_markdown(
    results: dict[str, dict[str, Any]],
    contenders: list[str],
    found_versions: dict[str, dict[str, str]],
    settings: str,
) -> None:
    print("\n--- Markdown for benchmarks/RESULTS.md ---\n")
    print(settings + "\n")
    print("| | " + " | ".join(LABELS[name] for name in contenders) + " |")
    print("|---" * (len(contenders) + 1) + "|")
    for label, key, unit in ROWS:
        print(f"| {label} | " + " | ".join(cell(results[name], key, unit) for name in contenders) + " |")
    print("\nVersions (read from each environment with importlib.metadata):\n")
    for name in contenders:
        if name in ("provider-operators", "airflow-floor"):
            continue
        packages = ", ".join(f"{package} {version}" for package, version in found_versions[name].items())
        label = "provider" if name == "provider-dag" else LABELS[name]
        print(f"- {label}: {packages}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--documents", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds at the emulator's latency")
    parser.add_argument("--latency", type=float, default=LATENCY_SECONDS)
    parser.add_argument("--no-overhead", action="store_true", help="skip the 0 ms round (local overhead)")
    parser.add_argument("--quick", action="store_true", help="400 documents, one round (development)")
    parser.add_argument("--only", nargs="*", choices=CONTENDERS, help="run these contenders only")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    if args.quick:
        args.documents, args.rounds = 400, 1
    contenders = list(args.only or CONTENDERS)
    for name in contenders:
        if not Path(python_of(name)).exists():
            raise SystemExit(f"{python_of(name)} is missing: run `make bench-peers` to build the peer venvs")

    found_versions = {name: versions(name) for name in contenders}
    airflow_mb = airflow_import_cost() / 2**20
    figures = {name: Figures() for name in contenders}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp_name:
        tmp = Path(tmp_name)
        corpora = (
            write_jsonl(tmp / "first.jsonl", corpus(args.documents, second_run=False)),
            write_jsonl(tmp / "second.jsonl", corpus(args.documents, second_run=True)),
        )
        emulator = Emulator(args.latency)
        try:
            bench = Bench(tmp, emulator, corpora)
            bench.migrate_airflow()
            schedule = [(f"r{r}", False, r) for r in range(args.rounds)]
            if not args.no_overhead:
                schedule.append(("fast", True, args.rounds))
            for round_name, fast, rotation in schedule:
                if fast:
                    emulator.command("latency 0")
                order = contenders[rotation % len(contenders) :] + contenders[: rotation % len(contenders)]
                for name in order:
                    if figures[name].failure:
                        continue
                    print(f"[{time.strftime('%H:%M:%S')}] {round_name}: {LABELS[name]}", file=sys.stderr)
                    try:
                        bench.pair(name, figures[name], round_name, fast=fast)
                    except RuntimeError as error:
                        figures[name].failure = str(error)
                        print(f"  {LABELS[name]} FAILED: {error}", file=sys.stderr)
        finally:
            emulator.stop()
    total = time.perf_counter() - started

    results = {name: summary(figures[name]) for name in contenders}
    settings = (
        f"{args.documents:,} documents, {DIM} dims, one emulator at {args.latency * 1000:.0f} ms latency, "
        f"Milvus Lite; second run after 1% text edits, 1% metadata-only edits, 1% deletes (a correct run "
        f"leaves {args.documents - args.documents // EDIT_SHARE:,} rows); "
        f"{args.rounds} interleaved round(s), median wall times"
        + ("" if args.no_overhead else "; local overhead = the same runs at 0 ms latency")
        + f"; Airflow's own import: {airflow_mb:.0f} MB"
    )
    print(f"\nSide by side with the peers ({settings}; {total:.0f} s in all):\n")
    print_table(results, contenders)
    print_targets(results, args.documents, airflow_mb)
    for name in contenders:
        if results[name]["failure"]:
            print(f"\n{LABELS[name]} failed: {results[name]['failure'].splitlines()[0]}")
    print_markdown(results, contenders, found_versions, settings)
    if args.json:
        args.json.write_text(json.dumps({"results": results, "versions": found_versions}, indent=2))


if __name__ == "__main__":
    main()
