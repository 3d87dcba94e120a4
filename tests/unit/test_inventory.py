"""Unit and property tests of the inventory loader: a valid file gives typed values; anything else gives one
:class:`InventoryError` naming file, line, key and fix — never another exception."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import certifi
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsproof.inventory import (
    KINDS,
    Alertmanager,
    HttpService,
    Inventory,
    InventoryError,
    Postgres,
    Prometheus,
    Redis,
    Replica,
    TlsEndpoint,
    load,
    loads,
)
from opsproof.result import Severity

ENV = {
    "PGPASSWORD": "pg-s3cret",
    "REDIS_PASSWORD": "redis-s3cret",
    "API_TOKEN": "tok-abc123",
    "HOST": "api.internal",
}

FULL = """\
environment: staging
production: true
http:
  api:
    url: https://${HOST}/v1
    health: /healthz
    ready: null
    expect_status: 204
    expect_json: {status: ok, version: 3}
    latency_budget_ms: 250
    timeout_s: 2.5
    headers:
      Authorization: Bearer ${API_TOKEN}
      X-Request-Source: opsproof
    verify_tls: /etc/ssl/ca.pem
    severity: critical
tls:
  web:
    host: www.example.com
    port: 8443
    server_name: example.com
    min_days: 30
postgres:
  main:
    dsn: postgresql://app:${PGPASSWORD}@db:5432/app
    max_connection_ratio: 0.7
    max_query_s: 60
    rls_tables: [orders, invoices]
    extensions: [pgcrypto]
    replicas:
      r1:
        dsn: host=replica1 user=app password='rep pw'
        max_lag_s: 5
redis:
  cache:
    url: redis://:${REDIS_PASSWORD}@cache:6379/0
    eviction_policy: allkeys-lru
    min_hit_rate: 0.5
    queues: {jobs: 1000, mail: 50}
prometheus:
  prom:
    url: http://prometheus:9090
    jobs_up: [api, node]
    rules: [HighErrorRate]
    no_alerts_at_or_above: high
alertmanager:
  am:
    url: http://alertmanager:9093
    receivers: [oncall]
    headers: {X-Api-Key: am-key-999}
"""
CA_BUNDLE = certifi.where()  # verify_tls must name a file that exists (checked at load)
FULL = FULL.replace("/etc/ssl/ca.pem", CA_BUNDLE)


def _error(text: str, env: dict[str, str] | None = None, source: str = "st.yaml") -> str:
    with pytest.raises(InventoryError) as info:
        loads(text, source, ENV if env is None else env)
    return str(info.value)


# --- a valid inventory ---------------------------------------------------------------------------------


def test_full_inventory_loads_with_typed_values() -> None:
    inv = loads(FULL, "st.yaml", ENV)
    assert inv.source == "st.yaml"
    assert inv.environment == "staging"
    assert inv.production is True
    assert inv.count() == 6
    assert all(len(inv.targets(kind)) == 1 for kind in KINDS
               if kind not in ("kubernetes", "slo", "backups", "logs", "tcp"))

    api = inv.http["api"]
    assert api.url == "https://api.internal/v1"
    assert api.health == "/healthz"
    assert api.ready is None
    assert api.expect_status == 204
    assert api.expect_json == {"status": "ok", "version": 3}
    assert api.latency_budget_ms == 250.0
    assert isinstance(api.latency_budget_ms, float)
    assert api.timeout_s == 2.5
    assert api.headers == {"Authorization": "Bearer tok-abc123", "X-Request-Source": "opsproof"}
    assert api.verify_tls == CA_BUNDLE
    assert api.severity is Severity.CRITICAL

    web = inv.tls["web"]
    assert (web.host, web.port, web.server_name, web.min_days) == ("www.example.com", 8443, "example.com", 30)

    main = inv.postgres["main"]
    assert main.dsn == "postgresql://app:pg-s3cret@db:5432/app"
    assert main.max_connection_ratio == 0.7
    assert main.max_query_s == 60.0
    assert main.rls_tables == ["orders", "invoices"]
    assert main.extensions == ["pgcrypto"]
    assert main.replicas["r1"].dsn == "host=replica1 user=app password='rep pw'"
    assert main.replicas["r1"].max_lag_s == 5.0

    cache = inv.redis["cache"]
    assert cache.url == "redis://:redis-s3cret@cache:6379/0"
    assert cache.eviction_policy == "allkeys-lru"
    assert cache.min_hit_rate == 0.5
    assert cache.queues == {"jobs": 1000, "mail": 50}

    prom = inv.prometheus["prom"]
    assert prom.jobs_up == ["api", "node"]
    assert prom.rules == ["HighErrorRate"]
    assert prom.no_alerts_at_or_above is Severity.HIGH

    am = inv.alertmanager["am"]
    assert am.receivers == ["oncall"]
    assert am.headers == {"X-Api-Key": "am-key-999"}


def test_defaults() -> None:
    inv = loads(
        """\
environment: dev
http: {api: {url: http://api}}
tls: {web: {host: example.com}}
postgres: {main: {dsn: postgresql://db/app}}
redis: {cache: {url: redis://cache}}
prometheus: {prom: {url: http://prom:9090}}
alertmanager: {am: {url: http://am:9093}}
""",
        env={},
    )
    assert inv.source == "<inventory>"
    assert inv.production is False
    api = inv.http["api"]
    assert (api.health, api.ready, api.expect_status, api.expect_json) == ("/health", "/ready", 200, {})
    assert (api.latency_budget_ms, api.timeout_s, api.headers, api.verify_tls, api.severity) == (
        1000,
        5,
        {},
        True,
        None,
    )
    web = inv.tls["web"]
    assert (web.port, web.server_name, web.min_days, web.ca_file, web.timeout_s) == (443, None, 14, None, 5)
    main = inv.postgres["main"]
    assert (main.max_connection_ratio, main.max_query_s, main.min_cache_hit_ratio) == (0.8, 300, 0.9)
    assert (main.rls_tables, main.extensions, main.replicas, main.connect_timeout_s) == ([], [], {}, 5)
    cache = inv.redis["cache"]
    assert (cache.max_memory_ratio, cache.eviction_policy, cache.min_hit_rate) == (0.9, None, None)
    assert (cache.min_lookups, cache.queues, cache.timeout_s) == (100, {}, 5)
    assert inv.prometheus["prom"].no_alerts_at_or_above is Severity.CRITICAL
    assert inv.alertmanager["am"].receivers == []
    assert inv.secrets == frozenset()


def test_only_environment_is_required() -> None:
    inv = loads("environment: e1\n", env={})
    assert inv.count() == 0
    assert inv.http == {}


def test_load_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "staging.yaml"
    path.write_text(FULL, encoding="utf-8")
    inv = load(path, env=ENV)
    assert inv.source == str(path)
    assert inv.postgres["main"].max_query_s == 60


# --- interpolation ---------------------------------------------------------------------------------------


def test_interpolation_from_env_and_default() -> None:
    inv = loads(
        """\
environment: ${ENV_NAME:-dev}
http:
  api:
    url: http://${HOST}:${PORT:-8080}/x
    health: /${EMPTY:-}health
""",
        env={"HOST": "h1"},
    )
    assert inv.environment == "dev"
    assert inv.http["api"].url == "http://h1:8080/x"
    assert inv.http["api"].health == "/health"


def test_env_value_wins_over_default() -> None:
    inv = loads("environment: ${ENV_NAME:-dev}\n", env={"ENV_NAME": "prod"})
    assert inv.environment == "prod"


def test_interpolation_uses_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSPROOF_TEST_ENV", "from-os")
    assert loads("environment: ${OPSPROOF_TEST_ENV}\n").environment == "from-os"


def test_missing_env_var_names_file_line_key_and_variable() -> None:
    text = "environment: st\npostgres:\n  main:\n    dsn: postgresql://app:${PGPASSWORD}@db/app\n"
    assert re.match(
        r"^st\.yaml:4: postgres\.main\.dsn: environment variable \$\{PGPASSWORD\} is not set\. "
        r"Fix: export PGPASSWORD=… before running, or write \$\{PGPASSWORD:-default\}\.$",
        _error(text, env={}),
    )


def test_missing_env_var_in_a_list_item() -> None:
    text = "environment: st\npostgres:\n  main:\n    dsn: x\n    rls_tables:\n      - a\n      - ${TABLE}\n"
    with pytest.raises(InventoryError, match=r"^st\.yaml:7: postgres\.main\.rls_tables\.1: .*\$\{TABLE\}"):
        loads(text, "st.yaml", {})


# --- secrets ---------------------------------------------------------------------------------------------


def test_secrets_are_collected() -> None:
    inv = loads(FULL, "st.yaml", ENV)
    assert {
        "pg-s3cret",  # DSN password, interpolated from ${PGPASSWORD}
        "redis-s3cret",  # redis URL password
        "tok-abc123",  # ${API_TOKEN}, and the token of "Authorization: Bearer …"
        "Bearer tok-abc123",  # the whole Authorization header value
        "rep pw",  # password='…' in a key=value DSN
        "am-key-999",  # X-Api-Key header
    } <= inv.secrets
    assert "api.internal" not in inv.secrets  # ${HOST} is not secret
    assert "opsproof" not in inv.secrets  # X-Request-Source is not a secret header
    assert "" not in inv.secrets


def test_interpolated_secret_variable_is_collected_wherever_it_is_used() -> None:
    inv = loads("environment: st\nhttp: {api: {url: 'http://h/?t=${API_TOKEN}'}}\n", env=ENV)
    assert inv.secrets == {"tok-abc123"}


def test_non_secret_interpolated_variable_is_not_collected() -> None:
    inv = loads("environment: st\nhttp: {api: {url: 'http://${HOST}/'}}\n", env=ENV)
    assert inv.secrets == frozenset()


def test_url_encoded_password_is_collected_in_both_forms() -> None:
    inv = loads("environment: st\npostgres: {main: {dsn: 'postgresql://u:p%40ss@db/app'}}\n", env={})
    assert {"p%40ss", "p@ss"} <= inv.secrets


def test_empty_secret_header_is_not_a_secret() -> None:
    inv = loads("environment: st\nhttp: {api: {url: http://h, headers: {Authorization: ''}}}\n", env={})
    assert inv.secrets == frozenset()


# --- errors: every one names file, line, key and fix -----------------------------------------------------


def test_brief_example_negative_number() -> None:
    text = "environment: st\npostgres:\n  main:\n    dsn: postgresql://db/app\n\n    max_query_s: -1\n"
    assert _error(text) == (
        "st.yaml:6: postgres.main.max_query_s: Input should be greater than 0 (got '-1'). Fix: use a larger number."
    )


def test_unknown_key_with_suggestion_and_line() -> None:
    text = "environment: st\npostgres:\n  main:\n    dsn: postgresql://db/app\n    max_conection_ratio: 0.5\n"
    with pytest.raises(
        InventoryError,
        match=r"^st\.yaml:5: postgres\.main\.max_conection_ratio: unknown key 'max_conection_ratio'\. "
        r"Fix: did you mean 'max_connection_ratio'\.$",
    ):
        loads(text, "st.yaml", {})


def test_unknown_top_level_section_with_suggestion() -> None:
    with pytest.raises(InventoryError, match=r"^st\.yaml:3: htpp: unknown key 'htpp'\. Fix: did you mean 'http'\.$"):
        loads("environment: st\n\nhtpp: {}\n", "st.yaml", {})


def test_unknown_key_without_close_match_lists_known_keys() -> None:
    with pytest.raises(
        InventoryError,
        match=r"^st\.yaml:2: tls\.w\.zzz: unknown key 'zzz'\. Fix: known keys here: ca_file, depends_on, host, ",
    ):
        loads("environment: st\ntls: {w: {host: h, zzz: 1}}\n", "st.yaml", {})


def test_wrong_type() -> None:
    text = "environment: st\ntls:\n  web:\n    host: h\n    port: abc\n"
    with pytest.raises(
        InventoryError, match=r"^st\.yaml:5: tls\.web\.port: Input should be a valid integer.* \(got 'abc'\)\. Fix: "
    ):
        loads(text, "st.yaml", {})


def test_wrong_type_of_section() -> None:
    with pytest.raises(
        InventoryError, match=r"^st\.yaml:2: http: Input should be a valid dictionary.*Fix: write a mapping of name"
    ):
        loads("environment: st\nhttp: [a, b]\n", "st.yaml", {})


def test_out_of_range_ratio() -> None:
    text = "environment: st\npostgres:\n  main:\n    dsn: host=x\n    max_connection_ratio: 1.5\n"
    with pytest.raises(
        InventoryError,
        match=r"^st\.yaml:5: postgres\.main\.max_connection_ratio: Input should be less than or equal to 1 "
        r"\(got '1\.5'\)\. Fix: use a smaller number\.$",
    ):
        loads(text, "st.yaml", {})


def test_bad_url_scheme_http() -> None:
    with pytest.raises(
        InventoryError,
        match=r"^st\.yaml:4: http\.api\.url: String should match pattern .* \(got 'ftp://x'\)\. "
        r"Fix: write it like https://api\.example\.com\.$",
    ):
        loads("environment: st\nhttp:\n  api:\n    url: ftp://x\n", "st.yaml", {})


def test_bad_url_scheme_redis() -> None:
    with pytest.raises(
        InventoryError,
        match=r"^st\.yaml:2: redis\.c\.url: String should match pattern .*Fix: write it like redis://",
    ):
        loads("environment: st\nredis: {c: {url: 'http://cache:6379'}}\n", "st.yaml", {})


def test_bad_dsn_scheme() -> None:
    with pytest.raises(
        InventoryError,
        match=r"^st\.yaml:2: postgres\.m\.dsn: a URL DSN must start with postgresql:// "
        r"\(got 'mysql://db'\)\. Fix: write it like postgresql://",
    ):
        loads("environment: st\npostgres: {m: {dsn: 'mysql://db'}}\n", "st.yaml", {})


def test_bad_severity() -> None:
    with pytest.raises(
        InventoryError, match=r"^st\.yaml:2: tls\.w\.severity: Input should be 'critical'.*Fix: use one of the listed"
    ):
        loads("environment: st\ntls: {w: {host: h, severity: urgent}}\n", "st.yaml", {})


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (
            "environment: st\npostgres:\n  main:\n    max_query_s: 3\n",
            r"^st\.yaml:3: postgres\.main\.dsn: required key is missing\. Fix: add 'dsn:'\.$",
        ),
        (
            "environment: st\nprometheus:\n  prom: {}\n",
            r"^st\.yaml:3: prometheus\.prom\.url: required key is missing\. Fix: add 'url:'\.$",
        ),
        (
            "environment: st\npostgres:\n  m:\n    dsn: host=x\n    replicas:\n      r1: {max_lag_s: 1}\n",
            r"^st\.yaml:6: postgres\.m\.replicas\.r1\.dsn: required key is missing\. Fix: add 'dsn:'\.$",
        ),
        (
            "production: true\nhttp: {}\n",
            r"^st\.yaml:1: environment: required key is missing\. Fix: add 'environment:'\.$",
        ),
    ],
    ids=["dsn", "url", "replica-dsn", "environment"],
)
def test_missing_required_key(text: str, pattern: str) -> None:
    with pytest.raises(InventoryError, match=pattern):
        loads(text, "st.yaml", {})


def test_bad_entry_and_environment_names() -> None:
    with pytest.raises(InventoryError, match=r"^st\.yaml:1: environment: String should match pattern"):
        loads("environment: 'has space'\n", "st.yaml", {})
    with pytest.raises(InventoryError, match=r"^st\.yaml:2: http: entry name 'a b' must be letters"):
        loads("environment: st\nhttp: {'a b': {url: http://x}}\n", "st.yaml", {})


# --- depends_on ------------------------------------------------------------------------------------------

CYCLE_FIX = (r"Fix: remove the item that is not a real need — following depends_on must never lead back to where it "
             r"started \(with all of them down, each would be blocked by the next and none would fail\)\.$")


@pytest.mark.parametrize(("text", "pattern"), [
    ("environment: st\nredis:\n  a: {url: 'redis://h/0', depends_on: [redis.b]}\n"
     "  b:\n    url: redis://h/0\n    depends_on:\n      - redis.a\n",
     r"^st\.yaml:3: redis\.a\.depends_on\.0: depends_on goes round in a cycle: redis\.a → redis\.b → redis\.a\. "),
    ("environment: st\nhttp:\n  web: {url: http://w}\nredis:\n  c:\n    url: redis://h/0\n"
     "    depends_on: [http.web, redis.a]\n  a: {url: 'redis://h/0', depends_on: [redis.b]}\n"
     "  b: {url: 'redis://h/0', depends_on: [redis.c]}\n",
     r"^st\.yaml:7: redis\.c\.depends_on\.1: depends_on goes round in a cycle: "
     r"redis\.c → redis\.a → redis\.b → redis\.c\. "),
    ("environment: st\nprometheus:\n  main: {url: http://p, depends_on: [slo.app]}\nslo:\n  app: {prometheus: main}\n",
     r"^st\.yaml:3: prometheus\.main\.depends_on\.0: depends_on goes round in a cycle: "
     r"prometheus\.main → slo\.app → prometheus\.main \(its prometheus:\)\. "),
], ids=["2-cycle", "3-cycle", "slo-prometheus"])
def test_a_depends_on_cycle_is_refused_with_the_cycle_spelled_out(text: str, pattern: str) -> None:
    with pytest.raises(InventoryError, match=pattern + CYCLE_FIX):
        loads(text, "st.yaml", {})


def test_a_self_dependency_is_refused() -> None:
    text = "environment: st\nredis:\n  a:\n    url: redis://h/0\n    depends_on:\n      - redis.a\n"
    with pytest.raises(InventoryError, match=r"^st\.yaml:6: redis\.a\.depends_on\.0: redis\.a depends on itself\. "
                       r"Fix: remove redis\.a from its depends_on \(an entry's own checks are already blocked by "
                       r"its reachability check\)\.$"):
        loads(text, "st.yaml", {})


def test_an_unknown_dependency_names_its_line() -> None:
    text = "environment: st\nredis:\n  a:\n    url: redis://h/0\n    depends_on:\n      - redis.a\n      - redis.zz\n"
    with pytest.raises(InventoryError, match=r"^st\.yaml:7: redis\.a\.depends_on\.1: 'redis\.zz' is not an entry of "
                       r"this inventory\. Fix: name an existing entry as kind\.name, e.g\. postgres\.main\.$"):
        loads(text, "st.yaml", {})


def test_dependencies_without_a_cycle_load() -> None:
    text = ("environment: st\nredis:\n  a: {url: 'redis://h/0', depends_on: [redis.b, redis.c]}\n"
            "  b: {url: 'redis://h/0', depends_on: [redis.c]}\n  c: {url: 'redis://h/0'}\n")
    assert loads(text, "st.yaml", {}).redis["a"].depends_on == ["redis.b", "redis.c"]


def test_several_problems_are_reported_together() -> None:
    text = "environment: st\ntls:\n  a:\n    port: 0\n  b:\n    host: h\n    min_days: -1\n"
    message = _error(text)
    head, *problems = message.split("\n")
    assert head == "st.yaml: 3 problem(s) in the inventory:"
    assert problems == [
        "  st.yaml:3: tls.a.host: required key is missing. Fix: add 'host:'.",
        "  st.yaml:4: tls.a.port: Input should be greater than or equal to 1 (got '0'). Fix: use a larger number.",
        "  st.yaml:7: tls.b.min_days: Input should be greater than or equal to 0 (got '-1'). Fix: use a larger number.",
    ]


def test_key_with_newline_stays_on_one_line() -> None:
    # Bug: the raw key broke the "one problem per line" shape.
    message = _error('environment: st\n"a\\nb": 1\n"c\\td": 2\n')
    assert message.splitlines() == [
        "st.yaml: 2 problem(s) in the inventory:",
        "  st.yaml:2: 'a\\nb': unknown key 'a\\nb'. Fix: known keys here: alertmanager, backups, chaos, environment, "
        "http, kubernetes, load, logs, postgres, production, prometheus, redis, slo, tcp, tls, tolerances.",
        "  st.yaml:3: 'c\\td': unknown key 'c\\td'. Fix: known keys here: alertmanager, backups, chaos, environment, "
        "http, kubernetes, load, logs, postgres, production, prometheus, redis, slo, tcp, tls, tolerances.",
    ]


def test_blank_key_is_quoted_in_the_path() -> None:
    # Found by the fuzz test ({' ': None}): the path of a blank key read "st.yaml:2:  : unknown key ' '".
    message = _error("environment: st\n' ': 1\n")
    assert message == ("st.yaml:2: ' ': unknown key ' '. Fix: known keys here: alertmanager, backups, chaos, "
                       "environment, http, kubernetes, load, logs, postgres, production, prometheus, redis, slo, tcp, "
                       "tls, tolerances.")


def test_invalid_yaml_names_the_line() -> None:
    text = "environment: st\nhttp:\n  api:\n    url: http://x\n   bad: [1\n"
    with pytest.raises(InventoryError, match=r"^st\.yaml:5: not valid YAML: .+\. Fix: check indentation and quoting"):
        loads(text, "st.yaml", {})


def test_invalid_yaml_unclosed_flow() -> None:
    with pytest.raises(InventoryError, match=r"^st\.yaml:\d+: not valid YAML: "):
        loads("environment: st\nhttp: {api: [\n", "st.yaml", {})


def test_duplicate_anchor_and_unknown_alias() -> None:
    with pytest.raises(InventoryError, match=r"^st\.yaml:2: not valid YAML: found undefined alias"):
        loads("environment: st\nhttp: *nope\n", "st.yaml", {})


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "---\n", "~\n"])
def test_empty_file(text: str) -> None:
    with pytest.raises(
        InventoryError,
        match=r"^st\.yaml:1: \(top level\): expected a mapping with 'environment:' and target sections, "
        r"got an empty file\. Fix: start from examples/sandbox\.yaml\.$",
    ):
        loads(text, "st.yaml", {})


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just text\n", "str"), ("42\n", "int")])
def test_top_level_must_be_a_mapping(text: str, kind: str) -> None:
    with pytest.raises(InventoryError, match=rf"^st\.yaml:1: \(top level\): expected a mapping .*, got a {kind}\. "):
        loads(text, "st.yaml", {})


def test_several_documents() -> None:
    with pytest.raises(InventoryError, match=r"^st\.yaml:2: not valid YAML: but found another document\. "):
        loads("environment: a\n---\nenvironment: b\n", "st.yaml", {})


@pytest.mark.parametrize(
    "text",
    [
        "environment: !!bool maybe\n",  # KeyError inside PyYAML
        "environment: !!int ''\n",  # IndexError
        "environment: !!float ''\n",  # IndexError
        "environment: !!timestamp never\n",  # AttributeError
        "environment: 2001-02-30\n",  # ValueError (day out of range)
        "environment: !!binary 'a'\n",  # ConstructorError (bad base64)
        "environment: !!python/object:os.system ls\n",
        "environment: 1" + "0" * 5000 + "\n",  # ValueError: int string conversion limit
        "environment: st\x00\n",  # ReaderError
    ],
    ids=["bool", "int", "float", "timestamp", "date", "binary", "python-tag", "long-int", "nul"],
)
def test_yaml_constructor_failures_become_inventory_errors(text: str) -> None:
    # Bug: PyYAML's constructors raise KeyError/IndexError/AttributeError, which escaped as tracebacks.
    with pytest.raises(InventoryError, match=r"^st\.yaml:\d+: not valid YAML: "):
        loads(text, "st.yaml", {})


def test_huge_hex_integer_is_reported_without_printing_it() -> None:
    # Bug: str() of a 20000-bit int raised ValueError (int max str digits) while formatting the message.
    text = "environment: st\ntls:\n  a: {host: h, port: 0x" + "f" * 5000 + "}\n"
    with pytest.raises(
        InventoryError,
        match=r"^st\.yaml:3: tls\.a\.port: Input should be less than or equal to 65535 "
        r"\(got 'an integer of 20000 bits'\)\. Fix: use a smaller number\.$",
    ):
        loads(text, "st.yaml", {})


def test_huge_integer_key_in_a_missing_variable_path() -> None:
    # Bug: formatting the key path called str() on a 20000-bit int key and raised ValueError.
    text = "environment: st\nx:\n  ? 0x" + "f" * 5000 + "\n  : ${NOPE}\n"
    with pytest.raises(
        InventoryError, match=r"^st\.yaml:3: x\.an integer of 20000 bits: environment variable \$\{NOPE\} is not set"
    ):
        loads(text, "st.yaml", {})


def test_non_string_keys_get_their_own_line() -> None:
    # Bug: the line map held the key's text ("1") while pydantic reports the int 1, so the line fell back to
    # the parent's.
    with pytest.raises(InventoryError, match=r"^st\.yaml:4: http\.1\.\[key\]: Input should be a valid string"):
        loads("environment: st\nhttp:\n\n  1: {url: http://x}\n", "st.yaml", {})
    with pytest.raises(InventoryError, match=r"^st\.yaml:3: 16: Keys should be strings \(got '16'\)"):
        loads("environment: st\n\n0x10: 1\n", "st.yaml", {})


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "st.yaml"
    path.write_bytes(b"environment: st\n# caf\xe9\nhttp: {}\n")
    with pytest.raises(
        InventoryError, match=rf"^{re.escape(str(path))}:2: not UTF-8 text\. Fix: save the file as UTF-8\.$"
    ):
        load(path, env={})


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(
        InventoryError,
        match=rf"^{re.escape(str(path))}: cannot read the inventory \(No such file or directory\)\. "
        r"Fix: check the path\.$",
    ):
        load(path)


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=rf"^{re.escape(str(tmp_path))}: cannot read the inventory \(.+\)\. Fix: "):
        load(tmp_path)


def test_path_with_nul_byte() -> None:
    # Bug: Path.read_bytes raised ValueError ("embedded null byte"), not OSError.
    with pytest.raises(InventoryError, match=r"^'st\\x00\.yaml': cannot read the inventory \(embedded null byte\)"):
        load("st\x00.yaml")


def test_inventory_error_is_a_value_error() -> None:
    assert issubclass(InventoryError, ValueError)


# --- robustness: YAML bombs, cycles, depth, huge numbers -----------------------------------------------------


def _laughs(levels: int, mapping: bool = False, width: int = 10) -> str:
    """The "billion laughs": each anchor aliases the previous one `width` times (width**levels leaves)."""
    out = ['a0: &a0 {x: "lol"}' if mapping else 'a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        if mapping:
            out.append(f"a{i}: &a{i} {{" + ", ".join(f"k{j}: *a{i - 1}" for j in range(width)) + "}")
        else:
            out.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(out) + "\n"


def _anchored(levels: int, mapping: bool = False) -> str:
    """A bomb nested under the key ``b`` with anchor ``&b``, for use as ``*b`` elsewhere in the document."""
    return "b: &b\n" + "".join(f"  {line}\n" for line in _laughs(levels, mapping=mapping).splitlines())


CALL_BUDGET = 200_000  # Python calls: ~10x the most any bomb here costs; a walk of the expansions costs ~10**9


class _OverBudget(BaseException):  # not an Exception: the loader's error handling must not turn it into a finding
    pass


def _within_call_budget(fn: Any) -> Any:
    """``fn()``, stopped once it has made ``CALL_BUDGET`` Python calls: a bound on the loader's work that reads the
    same on a busy machine as on an idle one (a wall-clock bound does not), and that stops a runaway walk at once
    instead of after it (work inside libyaml's and pydantic-core's compiled code is not counted)."""
    calls = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1
            if calls > CALL_BUDGET:
                raise _OverBudget

    sys.setprofile(count)
    try:
        return fn()
    except _OverBudget:
        pytest.fail(f"the loader made more than {CALL_BUDGET} Python calls: its work is not linear in the text")
    finally:
        sys.setprofile(None)


BOMBS = {
    "list-bomb-top-level": "environment: st\n" + _laughs(9),
    "dict-bomb-top-level": "environment: st\n" + _laughs(9, mapping=True),
    "bomb-in-list-field": _anchored(9) + "environment: st\npostgres: {m: {dsn: d, rls_tables: *b}}\n",
    "bomb-as-section": _anchored(9, mapping=True) + "environment: st\nhttp: *b\n",
    "bomb-in-headers": _anchored(9, mapping=True)
    + "environment: st\nhttp: {a: {url: 'http://x', headers: *b, expect_json: *b}}\n",
    "self-alias": "a: &x [*x]\n",
    "self-alias-mapping": "a: &x {b: *x}\n",
    "self-alias-in-section": "environment: st\nhttp: &x {a: *x}\n",
    "self-alias-in-field": "environment: st\npostgres: {m: &x {dsn: d, replicas: {r: *x}}}\n",
    "deep-flow-list": "[" * 5000,
    "deep-flow-list-closed": "[" * 5000 + "]" * 5000,
    "deep-flow-map": "{a: " * 5000 + "}" * 5000,
    "deep-block": "".join(" " * i + "a:\n" for i in range(3000)),
    "deep-under-section": "environment: st\nhttp:\n  a:\n    url: " + "[" * 400 + "]" * 400 + "\n",
    "huge-decimal": "environment: st\ntls: {a: {host: h, port: " + "9" * 100_000 + "}}\n",
    "huge-hex-in-float": "environment: st\ntls: {a: {host: h, timeout_s: 0x" + "f" * 100_000 + "}}\n",
    "huge-sexagesimal": "environment: st\ntls: {a: {host: h, port: " + ":".join(["59"] * 3000) + "}}\n",
    "huge-float": "environment: st\ntls: {a: {host: h, port: 1e999, min_days: .nan, timeout_s: -.inf}}\n",
    "merge-keys": "b: &b {host: h}\nenvironment: st\ntls: {a: {<<: [*b, *b], port: 1}}\n",
    "bad-merge": "environment: st\ntls: {a: {<<: 1}}\n",
    "complex-key": "? [a, b]\n: 1\n",
    "long-key": "environment: st\n" + "k" * 200_000 + ": 1\n",
}


@pytest.mark.parametrize("text", BOMBS.values(), ids=BOMBS.keys())
def test_bombs_cycles_depth_and_huge_numbers_give_inventory_errors(text: str) -> None:
    try:
        inv = _within_call_budget(lambda: loads(text, "bomb.yaml", {}))
    except InventoryError as e:
        _assert_shape(str(e), "bomb.yaml")
    else:
        assert isinstance(inv, Inventory)


def test_billion_laughs_costs_linear_work() -> None:
    # Bug: interpolation walked every alias expansion: 10**9 leaves never finished. Shared nodes are now
    # visited once, so the cost is the size of the text.
    with pytest.raises(
        InventoryError, match=r"^b\.yaml: 10 problem\(s\) in the inventory:\n  b\.yaml:2: a0: unknown key"
    ):
        _within_call_budget(lambda: loads("environment: st\n" + _laughs(9), "b.yaml", {}))


def test_self_referencing_alias_is_an_inventory_error() -> None:
    with pytest.raises(InventoryError, match=r"^b\.yaml:1: \(top level\): nesting too deep\. Fix: flatten the file\.$"):
        loads("a: &x [*x]\n", "b.yaml", {})


def test_deep_nesting_is_an_inventory_error() -> None:
    with pytest.raises(
        InventoryError, match=r"^b\.yaml:1: not valid YAML: nesting too deep\. Fix: flatten the file\.$"
    ):
        loads("[" * 5000, "b.yaml", {})


def test_aliases_in_a_valid_inventory_still_work() -> None:
    text = "environment: st\ncommon: &c {timeout_s: 3}\n"
    with pytest.raises(InventoryError, match=r"common: unknown key"):
        loads(text, "st.yaml", {})
    inv = loads("environment: st\ntls:\n  a: &c {host: h, timeout_s: 3}\n  b: *c\n", env={})
    assert inv.tls["a"] == inv.tls["b"]
    assert inv.tls["b"].timeout_s == 3


# --- properties ---------------------------------------------------------------------------------------------

SOURCE = "prop.yaml"


def _assert_shape(message: str, source: str = SOURCE) -> None:
    """One problem on one line (``file:line: …``), or a head line and one ``file:line: …`` line per problem."""
    lines = message.split("\n")
    head = re.match(rf"^{re.escape(source)}: (\d+) problem\(s\) in the inventory:$", lines[0])
    if head is None:
        assert len(lines) == 1, message
        assert re.match(rf"^{re.escape(source)}:\d+: \S.*\. Fix: .+\.$", message), message
    else:
        assert int(head[1]) == len(lines) - 1 >= 2, message
        for line in lines[1:]:
            assert re.match(rf"^  {re.escape(source)}:\d+: \S.*\. Fix: .+\.$", line), message


def _outcome(text: str, env: dict[str, str] | None = None) -> Inventory | None:
    try:
        inv = loads(text, SOURCE, ENV if env is None else env)
    except InventoryError as e:
        _assert_shape(str(e))
        return None
    assert isinstance(inv, Inventory)
    assert all(isinstance(s, str) and s for s in inv.secrets)
    return inv


YAMLISH = st.text(alphabet=st.sampled_from([*list("ab:-[]{},&*!?|>'\"#%@`\n ${}\\0.~=\t"), "\r", "\ufeff", "é"]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), YAMLISH, YAMLISH.map(lambda t: "environment: st\n" + t)))
def test_arbitrary_text_gives_inventory_or_inventory_error(text: str) -> None:
    _outcome(text)


MODELS = (Inventory, HttpService, TlsEndpoint, Postgres, Replica, Redis, Prometheus, Alertmanager)
FIELDS = sorted({name for model in MODELS for name in model.model_fields})
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(
        [
            "http://x",
            "https://a.example",
            "redis://:pw@c:6379",
            "postgresql://u:p@db/x",
            "/health",
            "critical",
            "${HOST}",
            "${API_TOKEN}",
            "${NOPE}",
            "${NOPE:-d}",
            "-1",
            "0",
            "1.5",
            "",
        ]
    ),
)
KEYS = st.one_of(st.sampled_from(FIELDS), st.text(max_size=8), st.integers(-3, 3), st.booleans())
TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)),
    max_leaves=20,
)


@st.composite
def documents(draw: st.DrawFn) -> Any:
    tree = draw(TREES)
    shape = draw(st.sampled_from(["raw", "top", "section", "entry"]))
    if shape == "raw":
        return tree
    doc: dict[Any, Any] = {"environment": "st"} if draw(st.booleans()) else {}
    kind = draw(st.sampled_from(KINDS))
    if shape == "top":
        doc[kind] = tree
    elif shape == "section":
        doc[kind] = {"e1": tree}
    else:
        entry = dict(tree) if isinstance(tree, dict) else {"extra": tree}
        entry.setdefault({"tls": "host", "postgres": "dsn"}.get(kind, "url"), draw(SCALARS))
        doc[kind] = {"e1": entry}
    return doc


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_arbitrary_structures_give_inventory_or_inventory_error(doc: Any) -> None:
    _outcome(yaml.safe_dump(doc, allow_unicode=True))


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(list(KINDS)), st.integers(1, 12), st.booleans())
def test_generated_bombs_and_cycles(kind: str, levels: int, mapping: bool) -> None:
    text = _anchored(levels, mapping) + f"environment: st\n{kind}: {{e: {{x: *b}}, f: *b}}\ncycle: &c [*c]\n"
    assert _within_call_budget(lambda: _outcome(text)) is None


def test_validate_exits_4_like_pytest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from opsproof.cli import main

    path = tmp_path / "st.yaml"
    path.write_text("environment: st\nredis:\n  a: {url: 'redis://h/0', depends_on: [redis.a]}\n")
    assert main(["validate", str(path)]) == 4
    assert re.match(rf"^opsproof: {re.escape(str(path))}:3: redis\.a\.depends_on\.0: redis\.a depends on itself",
                    capsys.readouterr().err)
    path.write_text("environment: st\n")
    assert main(["validate", str(path)]) == 0


def test_the_answer_size_cap_is_a_typed_validated_field() -> None:
    inv = loads("environment: st\nhttp:\n  api: {url: 'https://api.example'}\n"
                "prometheus:\n  main: {url: 'http://prom:9090', max_answer_bytes: 67108864}\n", "st.yaml")
    assert inv.targets("http")["api"].max_answer_bytes == 1 << 20
    assert inv.targets("prometheus")["main"].max_answer_bytes == 64 << 20
    too_small = r"^st\.yaml:3: http\.api\.max_answer_bytes: .*greater than or equal to 1024"
    with pytest.raises(InventoryError, match=too_small):
        loads("environment: st\nhttp:\n  api: {url: 'https://api.example', max_answer_bytes: 10}\n", "st.yaml")
