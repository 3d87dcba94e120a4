"""No secret reaches any output. An inventory of the sandbox whose DSNs and URLs carry passwords (the sandbox's own,
and a canary in the HTTP URL's userinfo) and whose headers and a query carry a canary token drives real runs — smoke
(with failing checks, so tracebacks and locals are printed), the DR drill, a baseline and the post-maintenance diff, a
backup and a chaos experiment — and every kind of output they write is grepped for every canary.

``OUTPUT_KINDS`` is the list of what is grepped: add the load and report outputs there as they land. Each kind is
first shown to be the right place (non-empty, naming a target), and each canary to be findable where it was put, so
that a test grepping the wrong file cannot pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import REPO, SandboxHelper, run_suite

from opsproof.inventory import load
from opsproof.sandbox.process import free_port

# one worker makes the outputs (a module fixture of ≈ 40 s: every suite and command once) and greps them all
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("canary")]

PASSWORD = "canary-pw-7Q2xZk9"  # in the HTTP URL's userinfo
# in headers (Authorization, X-Api-Token) and a ?token= query; short, as a token can be: --setup-show prints a
# parameter's repr cut to 42 characters, the last 20 of them kept
TOKEN = "Tk_c4n9"
S3_SECRET = "s3k-c4n9-Wq7"  # an S3 secret key written literally: no redactor masks it, only its absence keeps it out


def _files(folder: Path, pattern: str = "*") -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.rglob(pattern)) if p.is_file())


def _cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "opsproof.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    return done.stdout + done.stderr


class Outputs:
    """Every output of the runs, by kind (the runs happen once, for the whole module)."""

    def __init__(self, box: SandboxHelper, root: Path) -> None:
        self.box, self.root = box, root
        self.inventory = self._inventory()
        self.text: dict[str, str] = {}
        self.passwords = [box.box.meta["passwords"][r] for r in ("opsproof_monitor", "opsproof_backup", "redis")]

    def _inventory(self) -> Path:
        data = yaml.safe_load(self.box.inventory.read_text())
        app = data["http"]["app"]
        app["url"] = app["url"].replace("http://", f"http://canary:{PASSWORD}@")
        app["health"] = f"/health?token={TOKEN}"
        app["headers"] = {"Authorization": f"Bearer {TOKEN}", "X-Api-Token": TOKEN}
        app["latency_budget_ms"] = 0.001  # fails: a traceback with its locals
        for kind in ("prometheus", "alertmanager"):
            data[kind]["main"]["headers"] = {"Authorization": f"Bearer {TOKEN}"}
        data["postgres"]["main"]["max_connection_ratio"] = 0.0001  # fails
        data["redis"]["cache"]["eviction_policy"] = "noeviction"  # fails
        data["backups"]["cache"]["sample"] = 5
        # object storage credentials written literally (not as ${VAR}: the redactor does not know them), at an endpoint
        # that refuses: the backups.s3_* checks of the post-maintenance run fail, and the key must be in no output
        data["backups"]["cache"]["s3"] = {"endpoint": f"http://127.0.0.1:{free_port()}", "bucket": "canary-bkp",
                                          "access_key": "AKIACANARY", "secret_key": S3_SECRET, "max_bytes": "1GiB",
                                          "lifecycle": True, "timeout_s": 2}
        data["load"] = {"canary": {  # the app entry's URL and headers, a token in a query: one threshold fails
            "service": "app", "users": 2, "duration": "2s", "think_time": "50ms",
            "headers": {"X-Load-Token": TOKEN}, "thresholds": ["p(95) < 1us", "error_rate < 100%"],
            "requests": [{"path": f"/items/1?token={TOKEN}"}, {"name": "canary-missing", "path": "/no-such-page"}]}}
        path = self.root / "inventory.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    def smoke(self, name: str, *args: str) -> Path:
        out = self.root / name
        run = run_suite(self.inventory, out, *args, suite="smoke")
        assert run.code == 1, run.output  # the failing checks failed, and nothing else went wrong
        self.text[f"stdout {name}"] = run.output
        return out

    def collect(self) -> None:
        self.smoke("-vv -rA", "-vv", "-rA")
        self.smoke("-l --full-trace", "-l", "--full-trace", "--tb=long")
        self.smoke("-vvv -l", "-vvv", "-l")  # locals and arguments in full
        self.smoke("--setup-show", "--setup-show")
        logs = self.smoke("log_cli DEBUG", "-o", "log_cli=true", "--log-cli-level=DEBUG", "--log-level=DEBUG",
                          "--log-file", str(self.root / "debug.log"), "--log-file-level=DEBUG", "-rA")
        self.text["--log-file DEBUG"] = (self.root / "debug.log").read_text()
        allure = self.smoke("allure", "--alluredir", str(self.root / "allure"))
        self.text["Allure results"] = _files(self.root / "allure")
        self.text["JUnit XML"] = "\n".join((self.root / n / "junit.xml").read_text() for n in ("-vv -rA", "allure"))
        self.text["JUnit XML with DEBUG logs"] = (logs / "junit.xml").read_text()
        self.text["results.jsonl"] = (allure / "results.jsonl").read_text()
        self._maintenance()
        self._drill()
        self._chaos()
        self._load()
        self._report()

    def _maintenance(self) -> None:
        out = self.root / "maint"
        self.text["baseline capture stdout"] = _cli("baseline", "capture", "--label", "pre", "--inventory",
                                                    str(self.inventory), "--out", str(out))
        self.text["baselines/LABEL.json"] = (out / "baselines" / "pre.json").read_text()
        run = run_suite(self.inventory, out, "-vv", "--baseline", "pre", suite="checks/post_maintenance")
        self.text["stdout post_maintenance"] = run.output
        self.text["baseline-diff-LABEL.json"] = (out / "baseline-diff-pre.json").read_text()

    def _drill(self) -> None:
        out = self.root / "drill"
        run = run_suite(self.inventory, out, "-vv", suite="checks/dr_drill", timeout=300)
        self.text["stdout dr_drill"] = run.output
        self.text["drill evidence"] = _files(out / "drills", "*.json")
        self.text["backup stdout"] = _cli("backup", "--inventory", str(self.inventory), "--target", "app",
                                          "--out", str(self.root / "backup"))

    def _chaos(self) -> None:
        """An experiment that injects nothing: its probes run the checks of the canary entries, one failing."""
        def check(name: str, check: str, target: str) -> dict[str, object]:
            return {"type": "probe", "name": name, "tolerance": True, "provider": {
                "type": "python", "module": "opsproof.chaos.probes", "func": "check",
                "arguments": {"check": check, "target": target}}}

        experiment = {
            "version": "1.0.0", "title": "canary", "description": "probes only",
            "runtime": {"rollbacks": {"strategy": "always"}},
            "controls": [{"name": "opsproof", "provider": {"type": "python", "module": "opsproof.chaos.control"}}],
            "steady-state-hypothesis": {"title": "healthy", "probes": [
                check("app-healthy", "http.health", "app"), check("redis-up", "redis.ping", "cache")]},
            "method": [check("pg-connections", "postgres.connections", "main")],
            "rollbacks": [],
        }
        path = self.root / "canary.yaml"
        path.write_text(yaml.safe_dump(experiment))
        out = self.root / "chaos-out"
        self.text["chaos run stdout"] = _cli("chaos", "run", str(path), "--inventory", str(self.inventory),
                                             "--sandbox-dir", str(self.box.box.dir), "--out", str(out))
        self.text["chaos evidence"] = _files(out / "chaos", "*.json")  # the timeline is in it
        self.text["chaos fault journal"] = self._journal(path)
        under = self.root / "chaos-load-out"  # the same experiment under the canary load scenario (its token, URL)
        self.text["chaos run --load stdout"] = _cli("chaos", "run", str(path), "--load", "canary", "--inventory",
                                                    str(self.inventory), "--sandbox-dir", str(self.box.box.dir),
                                                    "--out", str(under))
        self.text["chaos under load evidence"] = _files(under / "chaos", "*.json") + _files(under / "load")

    def _journal(self, experiment: Path) -> str:
        """The fault journal as a fault writes it before injecting (a run crosses its entries out once rolled
        back, and this sandbox is shared: no fault is injected here), from the configuration a run passes —
        the canary inventory and an ``opsproof_pg_dsn`` with the canary password — into a folder of its own."""
        from opsproof.chaos import faultjournal, proxy, redisfaults

        folder = self.root / "journal-sandbox"
        folder.mkdir()
        dsn = f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/app?token={TOKEN}"
        configuration = {"opsproof_inventory": str(self.inventory), "opsproof_sandbox_dir": str(folder),
                         "opsproof_out": str(self.root / "chaos-out"), "opsproof_pg_dsn": dsn,
                         "opsproof_experiment": str(experiment)}
        faultjournal.record(configuration, "proxy[pgproxy]", "latency 700 ms on pgproxy", proxy.proxy_clear,
                            proxy="pgproxy")
        faultjournal.record(configuration, "redis[cache] pause", "CLIENT PAUSE redis[cache]",
                            redisfaults.unpause_clients, target="cache", until=0)
        return _files(folder, faultjournal.FILE)

    def _report(self) -> None:
        """The readiness report of everything above (each suite's output root), in its three formats."""
        roots = [str(self.root / n) for n in ("allure", "maint", "drill", "chaos-out", "load-out")]
        self.text["report stdout"] = _cli("report", *roots, "--inventory", str(self.inventory), "--report-dir",
                                          str(self.root / "readiness"))
        self.text["readiness report (html, md, json)"] = _files(self.root / "readiness")

    def _load(self) -> None:
        out = self.root / "load-out"
        run = run_suite(self.inventory, out, "-vv", "-rA", "-l", suite="load")
        assert run.code == 1, run.output  # the p(95) threshold failed, and nothing else went wrong
        self.text["stdout load"] = run.output
        self.text["load record"] = _files(out / "load", "*Z.json")
        self.text["Locust log"] = _files(out / "load", "*.log")
        self.text["Locust CSV and HTML"] = _files(out / "load", "*.csv") + _files(out / "load", "*.html")


OUTPUT_KINDS = (
    "stdout -vv -rA", "stdout -l --full-trace", "stdout -vvv -l", "stdout --setup-show", "stdout log_cli DEBUG",
    "--log-file DEBUG", "stdout allure", "Allure results", "JUnit XML", "JUnit XML with DEBUG logs", "results.jsonl",
    "baseline capture stdout", "baselines/LABEL.json", "stdout post_maintenance", "baseline-diff-LABEL.json",
    "stdout dr_drill", "drill evidence", "backup stdout", "chaos run stdout", "chaos evidence",
    "chaos fault journal",  # `pytest chaos` runs the same runner: its evidence and summary are the kinds above
    "chaos run --load stdout", "chaos under load evidence",
    "stdout load", "load record", "Locust log", "Locust CSV and HTML",
    "report stdout", "readiness report (html, md, json)",
)


@pytest.fixture(scope="module")
def outputs(sandbox: SandboxHelper, tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    sandbox.wait_healthy()
    found = Outputs(sandbox, tmp_path_factory.mktemp("canary"))
    found.collect()
    return found


def test_every_output_kind_is_collected_and_the_canaries_are_findable(outputs: Outputs) -> None:
    """The greps below look at the right places: each kind is what the runs wrote (it names a target), and each
    canary is where it was put — the inventory file and the raw configuration the probes are given."""
    assert set(outputs.text) == set(OUTPUT_KINDS)
    marks = ("http[app]", "postgres[main]", "redis[cache]", "backups[app]", "backups[cache]", "pg-connections",
             "HTTP Request: GET http://canary:",  # the log file names no target: httpx's request line, masked
             "load[canary]", "Scenario_canary", "canary-missing")  # the load record; Locust's log; its stats
    unrelated = [kind for kind, text in outputs.text.items() if not any(m in text for m in marks)]
    assert unrelated == []
    assert "s3://canary-bkp/ at http://127.0.0.1:" in outputs.text["stdout post_maintenance"]  # the S3 checks ran
    inventory = load(outputs.inventory)
    raw = json.dumps([inventory.http["app"].model_dump(), inventory.postgres["main"].model_dump(),
                      inventory.redis["cache"].model_dump(), inventory.prometheus["main"].model_dump(),
                      inventory.backups["cache"].model_dump()], default=str)
    for canary in (PASSWORD, TOKEN, S3_SECRET, *outputs.passwords):
        assert canary in outputs.inventory.read_text()
        assert canary in raw


@pytest.mark.parametrize("kind", OUTPUT_KINDS)
def test_no_canary_in(outputs: Outputs, kind: str) -> None:
    text = outputs.text[kind]
    leaked = [c for c in (PASSWORD, TOKEN, S3_SECRET, *outputs.passwords) if c in text]
    lines = [line[:300] for line in text.splitlines() if any(c in line for c in leaked)]
    assert leaked == [], f"{kind}: {len(lines)} line(s) with a canary, e.g.\n" + "\n".join(lines[:5])


def test_backup_out_creates_its_folder_owner_only(outputs: Outputs) -> None:
    """`opsproof backup --out DIR` (run above, under the usual umask): the DIR it created is 0700; it was 0755."""
    assert oct((outputs.root / "backup").stat().st_mode & 0o777) == oct(0o700)
