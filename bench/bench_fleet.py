"""Benchmark: a fleet of ~2,000 inventory entries of mixed kinds, ~9,000 smoke checks, in one pytest run.

Run by hand from the repository root:  .venv/bin/python bench/bench_fleet.py  [--repeat 3]  (as root: PostgreSQL
is initialised as the postgres user, as the sandbox does; binaries from /usr/lib/postgresql/15/bin)

The bench starts, on loopback, and stops when done (also on failure):
- an HTTP server (a thread of this process) answering /s/N/health and /s/N/ready after --http-delay-ms;
- a TLS server (a thread) with a trustme certificate for localhost: one handshake per connection;
- one PostgreSQL with one database per `postgres:` entry (copies of a template holding an RLS table),
  log_connections on;
- one Redis with one db number per `redis:` entry.
Then it times `pytest smoke --inventory INV` (a fresh subprocess, median of --repeat runs) and counts, on the
server side, the connections each run opened: PostgreSQL's "connection authorized … application_name=opsproof"
log lines per database, Redis's `INFO stats total_connections_received`. Targets: under 30 s on 2 cores; at most
one connection per PostgreSQL and per Redis entry, reused by all of its checks. Writes bench/fleet_results.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import redis
import trustme

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import child_env, run_once

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "fleet_results.json"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
TARGET_WALL_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- HTTP and TLS servers (threads of this process) ---------------------------------------------------------
class Http(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    delay_s = 0.0

    def do_GET(self) -> None:
        time.sleep(self.delay_s)
        body = b'{"status":"ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


@contextmanager
def http_server(delay_s: float) -> Iterator[str]:
    Http.delay_s = delay_s
    server = HttpServer(("127.0.0.1", 0), Http)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def tls_server(tmp: Path) -> Iterator[tuple[int, str]]:
    """(port, CA file): every connection gets a handshake with a certificate for localhost, then is closed."""
    ca = trustme.CA()
    ca_file = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            with context.wrap_socket(conn, server_side=True):
                pass
        except OSError:
            pass  # a client that drops the handshake
        finally:
            conn.close()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], str(ca_file)
    finally:
        stop.set()
        listener.close()


# --- PostgreSQL and Redis (processes) ------------------------------------------------------------------------
def as_postgres(*cmd: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True, timeout=120)


@contextmanager
def postgres(tmp: Path, databases: int) -> Iterator[tuple[int, Path]]:
    """(port, server log): one cluster, databases fleet0 … fleetN-1 copied from a template with an RLS table."""
    data, log = tmp / "pg" / "data", tmp / "pg" / "server.log"
    (tmp / "pg").mkdir()
    shutil.chown(tmp / "pg", "postgres")
    os.chmod(tmp, 0o755)
    port = free_port()
    as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    opts = (f"-p {port} -k {tmp / 'pg'} -c listen_addresses=127.0.0.1 -c max_connections={2 * databases + 50} "
            "-c log_connections=on -c fsync=off -c shared_buffers=64MB")
    as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "start")
    try:
        dsn = f"postgresql://postgres@127.0.0.1:{port}"
        with psycopg.connect(f"{dsn}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE fleet_template")
            with psycopg.connect(f"{dsn}/fleet_template", autocommit=True) as tpl:
                tpl.execute("CREATE TABLE items (id int PRIMARY KEY); ALTER TABLE items ENABLE ROW LEVEL SECURITY")
            for i in range(databases):
                conn.execute(f"CREATE DATABASE fleet{i} TEMPLATE fleet_template STRATEGY FILE_COPY")
        yield port, log
    finally:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")


@contextmanager
def redis_server(tmp: Path, databases: int) -> Iterator[int]:
    port = free_port()
    pidfile = tmp / "redis.pid"
    subprocess.run(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--databases", str(databases), "--maxmemory", "1gb", "--maxmemory-policy", "noeviction",
                    "--dir", str(tmp), "--daemonize", "yes", "--pidfile", str(pidfile)], check=True, timeout=30)
    client = redis.Redis(port=port, socket_timeout=5)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        for db in range(databases):  # the queue the checks read (LLEN of a missing key is a keyspace miss)
            with redis.Redis(port=port, db=db, socket_timeout=5) as one:
                one.rpush("jobs", "job")
        client.set("seen", "1")
        for _ in range(200):  # keyspace hits, so the hit-rate check has lookups to judge
            client.get("seen")
        yield port
    finally:
        with contextlib.suppress(redis.ConnectionError):  # it is gone: what shutdown wanted
            client.shutdown(nosave=True)


# --- the inventory and the server-side counts ---------------------------------------------------------------
def inventory(path: Path, n: dict[str, int], base: str, tls: tuple[int, str], pg_port: int, redis_port: int) -> None:
    lines = ["environment: fleet-bench", "http:"]
    lines += [f'  web{i:04d}: {{url: "{base}/s/{i}", expect_json: {{status: ok}}, latency_budget_ms: 2000}}'
              for i in range(n["http"])]
    lines.append("tls:")
    lines += [f'  edge{i:04d}: {{host: localhost, port: {tls[0]}, ca_file: "{tls[1]}", min_days: 1}}'
              for i in range(n["tls"])]
    lines.append("postgres:")
    lines += [f'  db{i:04d}: {{dsn: "postgresql://postgres@127.0.0.1:{pg_port}/fleet{i}", min_cache_hit_ratio: 0, '
              f"rls_tables: [public.items], extensions: [plpgsql]}}" for i in range(n["postgres"])]
    lines.append("redis:")
    lines += [f'  cache{i:04d}: {{url: "redis://127.0.0.1:{redis_port}/{i}", eviction_policy: noeviction, '
              f"min_hit_rate: 0.5, queues: {{jobs: 100}}}}" for i in range(n["redis"])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


AUTHORIZED = re.compile(r"connection authorized: user=\S+ database=(\S+) application_name=opsproof")


def pg_sessions(log: Path, offset: int) -> tuple[Counter[str], int]:
    """opsproof's sessions per database in the server log after ``offset``, and the new offset."""
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
        return Counter(AUTHORIZED.findall(text)), f.tell()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the median is reported (default 3)")
    parser.add_argument("--http", type=int, default=900, help="http entries (3 checks each; default 900)")
    parser.add_argument("--tls", type=int, default=200, help="tls entries (2 checks each; default 200)")
    parser.add_argument("--postgres", type=int, default=500, help="postgres entries (6 checks each; default 500)")
    parser.add_argument("--redis", type=int, default=600, help="redis entries (5 checks each; default 600)")
    parser.add_argument("--http-delay-ms", type=float, default=10, help="HTTP answer delay (default 10 ms)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON output (default bench/fleet_results.json)")
    opts = parser.parse_args()
    n = {"http": opts.http, "tls": opts.tls, "postgres": opts.postgres, "redis": opts.redis}
    load_before = os.getloadavg()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="opsproof-fleet-") as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        base = stack.enter_context(http_server(opts.http_delay_ms / 1000))
        tls = stack.enter_context(tls_server(tmp))
        pg_port, pg_log = stack.enter_context(postgres(tmp, n["postgres"]))
        redis_port = stack.enter_context(redis_server(tmp, max(16, n["redis"])))
        print(f"servers up in {time.perf_counter() - t0:.1f} s", flush=True)
        inv = tmp / "fleet.yaml"
        inventory(inv, n, base, tls, pg_port, redis_port)
        stats = redis.Redis(port=redis_port, socket_timeout=5)  # one connection of the bench's own, opened now
        stats.ping()
        pycache = tmp / "pycache"
        args = ["smoke", "-q", "-p", "no:cacheprovider", "--inventory", str(inv),
                "--opsproof-record", str(tmp / "results.jsonl")]
        run_once([*args, "-k", "web0000 or edge0000 or db0000 or cache0000"], ROOT, child_env(pycache))  # warm
        _, offset = pg_sessions(pg_log, 0)
        for i in range(opts.repeat):
            before = int(stats.info("stats")["total_connections_received"])
            res = run_once(args, ROOT, child_env(pycache))
            redis_conns = int(stats.info("stats")["total_connections_received"]) - before
            per_db, offset = pg_sessions(pg_log, offset)
            summary = [ln for ln in res.out.strip().splitlines() if ln.strip()][-1]
            runs.append({"wall_s": round(res.wall_s, 2), "cpu_s": round(res.cpu_s, 2), "exit": res.code,
                         "summary": summary, "postgres_sessions": sum(per_db.values()),
                         "postgres_max_per_database": max(per_db.values(), default=0),
                         "redis_connections": redis_conns})
            print(f"run {i + 1}/{opts.repeat}: {res.wall_s:.2f} s wall, {res.cpu_s:.2f} s cpu, exit {res.code} "
                  f"({summary}); PostgreSQL sessions {sum(per_db.values())} (max {max(per_db.values(), default=0)}"
                  f" per database), Redis connections {redis_conns}", flush=True)
            if res.code != 0:
                print("\n".join(res.out.strip().splitlines()[-25:]), file=sys.stderr)
        stats.close()

    checks = re.search(r"(\d+) passed", runs[-1]["summary"])
    wall = statistics.median(r["wall_s"] for r in runs)
    entries = sum(n.values())
    targets = [
        (f"{checks[1] if checks else '?'} checks over {entries} entries, wall (median)", f"{wall:.2f} s",
         f"< {TARGET_WALL_S:.0f} s", wall < TARGET_WALL_S and all(r["exit"] == 0 for r in runs)),
        ("PostgreSQL sessions per run (server log)", f"{max(r['postgres_sessions'] for r in runs)}",
         f"<= {n['postgres']} (one per entry)", all(r["postgres_sessions"] <= n["postgres"]
                                                    and r["postgres_max_per_database"] <= 1 for r in runs)),
        ("Redis connections per run (total_connections_received)", f"{max(r['redis_connections'] for r in runs)}",
         f"<= {n['redis']} (one per entry)", all(r["redis_connections"] <= n["redis"] for r in runs)),
    ]
    print()
    for label, got, want, passed in targets:
        print(f"{'PASS' if passed else 'FAIL'}  {label}: {got} (target {want})")
    opts.out.write_text(json.dumps({
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"nproc": len(os.sched_getaffinity(0)), "python": sys.version.split()[0],
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "config": {**n, "entries": entries, "http_delay_ms": opts.http_delay_ms, "repeat": opts.repeat},
        "runs": runs, "median_wall_s": wall,
        "targets": [{"target": t, "measured": g, "goal": w, "pass": p} for t, g, w, p in targets],
    }, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten: {opts.out}")
    return 0 if all(p for *_, p in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
