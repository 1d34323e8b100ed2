"""Load test: concurrent signed-in sessions searching a running workbench on loopback.

    .venv/bin/python benchmarks/load.py [--workspace DIR] [--sessions 20] [--seconds 60]
                                        [--think 0] [--url http://127.0.0.1:PORT] [--json]

Each session is a real Streamlit websocket session (benchmarks/streamlit_ws.py speaks the
browser's protocol): it signs in through the sign-in form as its own oncologist account,
opens the search page and submits queries in the student languages, one after another,
for --seconds, counted from when every session has signed in and opened the search page. A
query's latency is from the submit to the end of the page's script run, i.e. what a user
waits for: encoding, FAISS, evidence, rendering of every result card.

Two phases side by side: one session alone (the baseline), then --sessions together. Any
exception or error box on a page counts as an error. Without --url the benchmark starts its
own server over a scratch workspace that links the built one (cohort, models, index), so the
accounts it creates never touch the real store.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamlit_ws import SessionError, StreamlitSession  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "load-test-password-1"
CASE_PREFIX = "SYN"  # every result card names its case (markdown-escaped: SYN\\-00012)
# Tumour-board questions in the student languages (and English), written for this test.
QUERIES = (
    "Paciente com carcinoma ductal invasivo da mama, HER2 amplificado, metastático",
    "Adenocarcinoma de pulmón con mutación EGFR, estadio IV",
    "मेटास्टेटिक स्तन कैंसर HER2 प्रवर्धन के साथ",
    "Saratani ya utumbo mpana yenye mabadiliko ya KRAS",
    "Malignes Melanom mit BRAF V600E Mutation",
    "Carcinome hépatocellulaire avec cirrhose",
    "Glioblastoma with IDH wild-type and EGFR amplification",
)


@dataclass
class Phase:
    sessions: int
    seconds: float
    deadline: float = float("inf")  # set when every session is ready
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start_clock(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def summary(self) -> dict[str, float | int | list[str]]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

        return {
            "sessions": self.sessions,
            "queries": len(lat),
            "queries_per_s": len(lat) / self.seconds,
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "max_ms": lat[-1] * 1000 if lat else float("nan"),
            "mean_ms": statistics.fmean(lat) * 1000 if lat else float("nan"),
            "errors": len(self.errors),
            "error_samples": self.errors[:5],
        }


def _session(
    url: str,
    name: str,
    start: threading.Barrier,
    phase: Phase,
    offset: int,
    max_queries: int,
    think_s: float,
) -> None:
    try:
        with StreamlitSession(url, timeout_s=120) as s:
            s.run()
            signed = s.run(values={"auth.name": name, "auth.password": PASSWORD},
                           submit="auth.sign_in")  # fmt: skip
            if signed.errors():
                raise SessionError(f"sign-in failed: {signed.errors()}")
            s.run(page="search")
            start.wait()  # every session signed in and on the search page: the clock starts
            for i in range(offset, offset + max_queries):
                if time.monotonic() >= phase.deadline:
                    break
                query = QUERIES[i % len(QUERIES)]
                result = s.run(values={"search.query": query}, submit="search.form")
                problems = result.errors()
                if not any(CASE_PREFIX in text for text in result.texts()):
                    problems.append(f"no result cards for {query!r}")
                with phase.lock:
                    phase.latencies.append(result.seconds)
                    phase.errors.extend(f"{name}: {e}" for e in problems)
                time.sleep(think_s)  # reading the results before the next question
    except Exception as e:  # noqa: BLE001 - every failure is a finding of the load test
        start.abort()  # the other sessions stop waiting for this one
        with phase.lock:
            phase.errors.append(f"{name}: {type(e).__name__}: {e}")


def run_phase(
    url: str, n: int, seconds: float, max_queries: int = 10**9, think_s: float = 0.0
) -> dict:
    phase = Phase(n, seconds)
    start = threading.Barrier(n, action=phase.start_clock)
    threads = [
        threading.Thread(
            target=_session, args=(url, f"load{i:02d}", start, phase, i, max_queries, think_s)
        )
        for i in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return phase.summary()


def _scratch_workspace(built: Path, n_accounts: int) -> Path:
    from workbench.auth import AuthConfig, AuthService
    from workbench.roles import User
    from workbench.workspace import Workspace

    root = Path(tempfile.mkdtemp(prefix="cmkd-load-"))
    (root / "models").mkdir()
    for part in ("cohort", "index", *(f"models/{p.name}" for p in (built / "models").iterdir())):
        (root / part).symlink_to((built / part).resolve(), target_is_directory=True)
    auth = AuthService.from_workspace(Workspace(root), AuthConfig(bcrypt_rounds=4))
    auth.ensure_first_admin()
    for i in range(n_accounts):
        name = f"load{i:02d}"
        auth.change_password(name, auth.add_user(User("load-test", "admin"), name, "oncologist"),
                             PASSWORD)  # fmt: skip
    return root


def _start_server(workspace: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CMKD_WORKSPACE": str(workspace), "HF_HUB_OFFLINE": "1"}
    log = open(workspace / "server.log", "w")  # noqa: SIM115 - lives as long as the server
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
         "--server.headless", "true", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            return server, url
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit(f"the server did not start; see {workspace / 'server.log'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", type=Path,
                   default=Path(os.environ.get("CMKD_WORKSPACE", "workspace")))  # fmt: skip
    p.add_argument("--url", help="a running server whose store has accounts load00.. (optional)")
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--think", type=float, default=0.0,
                   help="seconds each session waits between queries (0: back to back)")  # fmt: skip
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    server = None
    url = args.url
    if url is None:
        scratch = _scratch_workspace(args.workspace.resolve(), args.sessions)
        server, url = _start_server(scratch)
    try:
        # Warm-up, not counted: every query once (models load on their first language).
        run_phase(url, 1, 600, max_queries=len(QUERIES))
        results = {
            "baseline": run_phase(url, 1, args.seconds, think_s=args.think),
            "concurrent": run_phase(url, args.sessions, args.seconds, think_s=args.think),
        }
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    base, conc = results["baseline"], results["concurrent"]
    results["p95_ratio"] = conc["p95_ms"] / base["p95_ms"]
    results["throughput_ratio"] = conc["queries_per_s"] / base["queries_per_s"]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name in ("baseline", "concurrent"):
        r = results[name]
        print(f"{name:10} sessions {r['sessions']:3d}  queries {r['queries']:5d} "
              f"({r['queries_per_s']:.1f}/s)  p50 {r['p50_ms']:.0f} ms  p95 {r['p95_ms']:.0f} ms"
              f"  max {r['max_ms']:.0f} ms  errors {r['errors']}")  # fmt: skip
        for e in r["error_samples"]:
            print(f"    {e}")
    print(f"p95 concurrent / alone: {results['p95_ratio']:.1f}x; "
          f"throughput concurrent / alone: {results['throughput_ratio']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
