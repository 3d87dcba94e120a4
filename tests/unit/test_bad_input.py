"""Bad input that used to be accepted (issue 10): each test reproduces one finding. Every error names the file,
the line, the key and the fix, and never shows a password."""

from __future__ import annotations

import json
import os
import re
from datetime import date
from pathlib import Path

import pytest
import yaml

from opsproof import cli, governance
from opsproof.inventory import InventoryError, load, loads

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "chaos" / "experiments"


def error(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(InventoryError) as caught:
        loads(text, "st.yaml", env or {})
    return str(caught.value)


# --- duplicate keys ----------------------------------------------------------------------------------------


def test_a_second_section_is_not_silently_kept_instead_of_the_first() -> None:
    text = "environment: st\nhttp:\n  api: {url: 'http://a'}\nredis: {}\nhttp:\n  web: {url: 'http://b'}\n"
    assert error(text) == ("st.yaml:5: http: duplicate key 'http', also at line 2: YAML keeps only the last one "
                           "and drops the other without a word. Fix: merge the two into one, or remove one.")


def test_a_duplicate_key_inside_an_entry_is_named_with_its_path() -> None:
    text = "environment: st\nhttp:\n  api:\n    url: 'http://a'\n    timeout_s: 2\n    url: 'http://b'\n"
    assert re.match(r"^st\.yaml:6: http\.api\.url: duplicate key 'url', also at line 4: ", error(text))


def test_merge_keys_may_override_what_they_merge() -> None:
    text = "environment: st\nbase: &b {url: 'http://a', timeout_s: 2}\n"
    with pytest.raises(InventoryError, match="unknown key 'base'"):  # not a duplicate: the merge overrides
        loads(text + "http:\n  api: {<<: *b, timeout_s: 3}\n", "st.yaml", {})


def test_a_duplicate_waiver_key_would_have_waived_everything() -> None:
    text = ("- check: redis.hit_rate@redis[cache]\n  reason: r\n  owner: o\n  ticket: T-1\n  expires: 2030-01-01\n"
            "  check: '*'\n")
    with pytest.raises(governance.WaiverError, match=r"^w\.yaml:6: \[0\]\.check: duplicate key 'check', also at "
                       r"line 1: YAML keeps only the last one"):
        governance.loads_waivers(text, "w.yaml")


def test_a_duplicate_key_in_a_yaml_experiment(tmp_path: Path) -> None:
    from opsproof.chaos.validate import validate

    path = tmp_path / "e.yaml"
    path.write_text((EXPERIMENTS / "redis-down.yaml").read_text() + "method: []\n")
    found = validate([path])[path]
    assert len(found) == 1, found
    assert re.match(rf"^{re.escape(str(path))}:\d+: method: duplicate key 'method', also at line \d+: ", found[0])


def test_a_duplicate_key_in_a_json_experiment_names_both_lines(tmp_path: Path) -> None:
    from opsproof.chaos.validate import validate

    experiment = yaml.safe_load((EXPERIMENTS / "redis-down.yaml").read_text())
    text = json.dumps(experiment, indent=1)
    text = text.replace('"title": "Redis down",', '"title": "Redis down",\n "title": "again",', 1)
    path = tmp_path / "e.json"
    path.write_text(text)
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines, 1) if line.strip() == '"title": "Redis down",')
    assert validate([path])[path] == [
        f"{path}:{first + 1}: title: duplicate key 'title', also at line {first}: JSON parsers keep only the last "
        "one and drop the other without a word. Fix: merge the two into one, or remove one."]


def test_the_same_key_in_two_json_objects_is_no_duplicate() -> None:
    from opsproof.util.documents import parse_json

    assert parse_json('{"a": {"name": 1}, "b": [{"name": 2}, {"name": "{\\"name\\""}]}') == {
        "a": {"name": 1}, "b": [{"name": 2}, {"name": '{"name"'}]}


# --- DSNs and URLs, parsed at load by the clients' own parsers -------------------------------------------


@pytest.mark.parametrize(("section", "value", "wanted"), [
    ("postgres", "not a dsn", r"not a PostgreSQL connection string \(missing \"=\" after \"not\""),
    ("postgres", "host=db port=abc", r"port 'abc' is not a port number \(1-65535\)"),
    ("postgres", "postgresql://app:hunter22@db:5432/app?sslmod=",
     r'not a PostgreSQL connection string \(invalid URI query parameter: "sslmod"'),
    ("postgres", "postgresql://app:hunter22@db:5432/app?sslmode=", r"sslmode '' is not one of disable, allow"),
    ("postgres", "postgresql://app:hunter22@[::1/app", r"not a PostgreSQL connection string .*"),
    ("redis", "redis://:hunter22@cache:notaport/0",
     r"not a Redis URL \(Port could not be cast to integer value as 'notaport'"),
    ("redis", "redis://:hunter22@cache:6379/x", r"database 'x' is not a number"),
    ("redis", "redis://:hunter22@/0", r"no host"),
    ("http", "http://api:99999", r"port 99999 is not a port number \(1-65535\)"),
    ("http", "http://[::1", r"not a URL \(Invalid port"),
    ("http", "http://user:hunter22@", r"no host"),
])
def test_a_malformed_address_is_a_load_error_not_an_outage(section: str, value: str, wanted: str) -> None:
    key = "dsn" if section == "postgres" else "url"
    message = error(f"environment: st\n{section}:\n  main:\n    {key}: '{value}'\n")
    assert re.match(rf"^st\.yaml:4: {section}\.main\.{key}: {wanted}.*\. Fix: .+\.$", message), message
    assert "hunter22" not in message


def test_an_interpolated_address_is_checked_after_interpolation_at_its_key() -> None:
    text = "environment: st\npostgres:\n  main:\n    dsn: postgresql://app:${PGPASSWORD}@db:${PGPORT}/app\n"
    message = error(text, {"PGPASSWORD": "pw-s3cret", "PGPORT": "54x"})
    assert message.startswith("st.yaml:4: postgres.main.dsn: port '54x' is not a port number")
    assert "pw-s3cret" not in message


def test_a_wrong_replica_or_scratch_dsn_is_named_too() -> None:
    text = "environment: st\npostgres:\n  main:\n    dsn: host=db\n    replicas: {r1: {dsn: 'host=r port=x'}}\n"
    assert error(text).startswith("st.yaml:5: postgres.main.replicas.r1.dsn: port 'x' is not a port number")


def test_good_addresses_still_load() -> None:
    inv = loads("environment: st\npostgres:\n  a: {dsn: 'host=db port=5432,5433 sslmode=require'}\n"
                "  b: {dsn: 'postgresql://u:p@db/app?sslmode=verify-full&connect_timeout=3'}\n"
                "redis:\n  a: {url: 'redis://:p@cache:6379/2'}\n  b: {url: 'unix:///run/redis.sock'}\n"
                "http:\n  a: {url: 'http://[::1]:8080/v1'}\n", "st.yaml", {})
    assert inv.count() == 5


# --- ceilings that can never pass, files that do not exist, cycles ------------------------------------------


def test_a_negative_queue_ceiling_can_never_pass() -> None:
    message = error("environment: st\nredis:\n  c:\n    url: redis://c:6379/0\n    queues: {celery: -5}\n")
    assert message.startswith("st.yaml:5: redis.c.queues.celery: Input should be greater than or equal to 0")


def test_hpa_min_above_max_can_never_pass() -> None:
    text = ("environment: st\nkubernetes:\n  k:\n    namespace: n\n    hpa:\n"
            "      web: {min_replicas: 5, max_replicas: 3}\n")
    assert error(text) == ("st.yaml:6: kubernetes.k.hpa.web: min_replicas 5 is above max_replicas 3: no number "
                           "of replicas satisfies both. Fix: swap them, or correct the one that is wrong.")


def test_a_ca_bundle_that_does_not_exist_is_a_load_error(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent.pem"
    message = error(f"environment: st\nhttp:\n  a:\n    url: https://a\n    verify_tls: {missing}\n")
    assert message == (f"st.yaml:5: http.a.verify_tls: the CA bundle {missing} does not exist. Fix: write the path "
                       "of a PEM file of CA certificates, or true for the system's.")
    message = error(f"environment: st\ntls:\n  a:\n    host: a\n    ca_file: {tmp_path}\n")
    assert message.startswith(f"st.yaml:5: tls.a.ca_file: the CA bundle {tmp_path} is not a file.")


def test_variables_that_refer_to_each_other_are_a_cycle() -> None:
    message = error("environment: st\nhttp:\n  a: {url: 'http://${A}'}\n", {"A": "${B}", "B": "x${A}"})
    assert message == ("st.yaml:3: http.a.url: environment variables refer to each other in a cycle: "
                       "${A} → ${B} → ${A}. Fix: give one of them a plain value.")


def test_a_variable_may_be_made_of_others() -> None:
    env = {"HOST": "db", "DB_URL": "postgresql://app:${PGPASSWORD}@${HOST}/app", "PGPASSWORD": "pw-1"}
    inv = loads("environment: st\npostgres:\n  a: {dsn: '${DB_URL}'}\n", "st.yaml", env)
    assert inv.postgres["a"].dsn == "postgresql://app:pw-1@db/app"
    assert "pw-1" in inv.secrets


# --- waivers that deserve a warning ---------------------------------------------------------------------


def waivers(*checks_and_dates: tuple[str, str]) -> list[governance.Waiver]:
    return [governance.Waiver(check=c, reason="r", owner="o", ticket="T-1", expires=date.fromisoformat(d))
            for c, d in checks_and_dates]


def test_a_blanket_or_endless_waiver_is_warned_about() -> None:
    from opsproof.input_warnings import waiver_warnings

    found = waiver_warnings(waivers(("redis.hit_rate@redis[cache]", "2026-03-01"), ("*", "2026-03-01"),
                                    ("http.*@http[api]", "9999-12-31")), "w.yaml", date(2026, 1, 1))
    assert found == [
        "w.yaml: [1].check: '*' matches every check: it waives any failure, known or not (o, T-1). "
        "Fix: name the check and target it accepts, e.g. redis.hit_rate@redis[cache].",
        "w.yaml: [2].expires: 9999-12-31 is more than a year away (o, T-1): a waiver is meant to end. "
        "Fix: set the date by which the finding is to be fixed.",
    ]


def test_validate_prints_the_waiver_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text("environment: st\n")
    w = tmp_path / "w.yaml"
    w.write_text("- {check: '*', reason: r, owner: o, ticket: T-1, expires: 2030-01-01}\n")
    assert cli.main(["validate", str(inv), "--waivers", str(w)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{inv}: environment st, 0 targets — valid\n{w}: 1 waiver(s) — valid\n"
    assert err.startswith(f"opsproof: warning: {w}: [0].check: '*' matches every check")


# --- files that are not inventories: devices, FIFOs, huge files --------------------------------------------


def test_a_device_is_refused_before_reading() -> None:
    with pytest.raises(InventoryError, match=r"^/dev/zero: cannot read the inventory \(a character device, not a "
                       r"regular file\)\. Fix: name the inventory file itself\.$"):
        load("/dev/zero")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "inv.yaml"
    os.mkfifo(fifo)
    with pytest.raises(InventoryError, match=r"\(a FIFO, not a regular file\)"):
        load(fifo)
    with pytest.raises(governance.WaiverError, match=r"cannot read the waivers file \(a FIFO, not a regular file\)"):
        governance.load_waivers(fifo)


def test_a_huge_file_is_refused_by_its_size(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("w") as f:
        f.truncate(5 * 1024 * 1024)
    with pytest.raises(InventoryError, match=rf"^{re.escape(str(big))}: 5\.0 MiB is more than an inventory may be "
                       r"\(4 MiB\)\. Fix: "):
        load(big)


# --- chaos validate ---------------------------------------------------------------------------------------


def experiment_with(tmp_path: Path, **provider: object) -> Path:
    experiment = yaml.safe_load((EXPERIMENTS / "redis-down.yaml").read_text())
    experiment["method"][6]["provider"].update(provider)  # app-recovers: alerts.recovers_within(seconds=30)
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(experiment))
    return path


@pytest.mark.parametrize(("content", "wanted"), [
    ("- a\n- b\n", r":1: \(top level\): expected a mapping \(title, description, method, …\), got a list\. Fix: "),
    (b"\x89PNG\r\n\x1a\n\x00\x00", r":\d+: not UTF-8 text\. Fix: save the file as UTF-8\.$"),
    ("title: [\n", r":2: not valid YAML: "),
])
def test_chaos_validate_names_a_broken_file_without_a_traceback(tmp_path: Path, content: str | bytes,
                                                                  wanted: str) -> None:
    from opsproof.chaos.validate import validate

    path = tmp_path / "e.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    found = validate([path])[path]
    assert len(found) == 1, found
    assert re.match(re.escape(str(path)) + wanted, found[0]), found


def test_chaos_validate_refuses_a_directory(tmp_path: Path) -> None:
    from opsproof.chaos.validate import validate

    assert validate([tmp_path])[tmp_path] == [
        f"{tmp_path}: cannot read the experiment (a directory, not a regular file). Fix: name the experiment file "
        "itself."]


def test_chaos_validate_imports_no_module_outside_the_extension(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from opsproof.chaos.validate import validate

    path = experiment_with(tmp_path, module="this", func="nothing")
    assert validate([path])[path] == [
        "method 'app-recovers': module 'this' is not part of the opsproof chaos extension, so it was not imported. "
        "Fix: use one of opsproof.chaos.alerts, opsproof.chaos.audit, opsproof.chaos.control, opsproof.chaos.faults, "
        "opsproof.chaos.k8s, opsproof.chaos.pgfaults, opsproof.chaos.probes, opsproof.chaos.proxy, "
        "opsproof.chaos.redisfaults, opsproof.chaos.targets, or pass --allow-module this for a provider you trust "
        "(it is then imported)"]
    assert "Zen of Python" not in capsys.readouterr().out


def test_chaos_validate_refuses_os_system_unless_allowed(tmp_path: Path) -> None:
    from opsproof.chaos.validate import validate

    path = experiment_with(tmp_path, module="os", func="system", arguments={"command": "true"})
    assert "module 'os' is not part of the opsproof chaos extension" in validate([path])[path][0]
    assert validate([path], allowed=("os",))[path] == []  # the user named it: Chaos Toolkit's own check applies


def test_chaos_validate_knows_the_extensions_functions(tmp_path: Path) -> None:
    from opsproof.chaos.validate import validate

    path = experiment_with(tmp_path, func="service_pid")  # in opsproof.chaos.faults, but no activity
    found = validate([path])[path]
    assert found[0].startswith("method 'app-recovers': opsproof.chaos.alerts has no action or probe 'service_pid' "
                               "(it has alert_delivered, alert_fires, ")


@pytest.mark.parametrize(("seconds", "wanted"), [
    (-5, "argument seconds=-5 is negative: recovers_within(seconds: float) takes a duration, count or ratio ≥ 0"),
    ("thirty", "argument seconds='thirty' does not fit recovers_within(seconds: float): Input should be a valid "
               "number"),
    ("30", "argument seconds='30' does not fit recovers_within(seconds: float): Input should be a valid number"),
    (True, "argument seconds=True does not fit recovers_within(seconds: float): Input should be a valid number"),
])
def test_chaos_validate_checks_argument_types(tmp_path: Path, seconds: object, wanted: str) -> None:
    from opsproof.chaos.validate import validate

    path = experiment_with(tmp_path, arguments={"seconds": seconds})
    assert validate([path])[path] == [f"method 'app-recovers': {wanted}"]


def test_chaos_validate_accepts_good_arguments_and_configuration_references(tmp_path: Path) -> None:
    from opsproof.chaos.validate import validate

    for seconds in (30, 1.5, "${recovery_s}"):
        path = experiment_with(tmp_path, arguments={"seconds": seconds, "target": "app"})
        if isinstance(seconds, str):
            experiment = yaml.safe_load(path.read_text())
            experiment["configuration"]["recovery_s"] = 30
            path.write_text(yaml.safe_dump(experiment))
        assert validate([path])[path] == [], seconds


def test_the_shipped_experiments_validate() -> None:
    from opsproof.chaos.validate import validate

    shipped = sorted(EXPERIMENTS.glob("*.yaml"))
    assert shipped
    assert validate(shipped) == {p: [] for p in shipped}
