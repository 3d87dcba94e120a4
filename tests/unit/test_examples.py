"""The example inventories in ``examples/`` load, keep every secret in ``${VAR}``, and say what they are.

Every ``examples/*.yaml`` is checked, whoever added it: the runbook examples and any later file (such as
``examples/sandbox.yaml``). Nothing here contacts a target.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opsproof.inventory import KINDS, SECRET_HEADER, Inventory, InventoryError, load, url_secrets

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FILES = sorted(EXAMPLES.glob("*.yaml"))

# The examples written from the founding runbooks (/work/shared/seeds), with the runbook each comes from.
RUNBOOK_EXAMPLES = {
    "magicsaas-production.yaml": "000_39e3d7eb3b8aece9",
    "sophia-ai-production.yaml": "001_56ffa78bc8d2b136",
    "smartcloudops-staging.yaml": "002_0b7da04a00b34e0c",
    "vibethink-production.yaml": "003_c100c275d5d3553b",
    "signx-apex-production.yaml": "004_c5697c093fa1bf1e",
}

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")
# scheme://user:password@host — the password part, as written in the file
URL_PASSWORD = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:'\"]*:([^\s/@'\"]*)@")
KEYWORD_PASSWORD = re.compile(r"\bpassword\s*=\s*('[^']*'|[^\s'\"]+)", re.IGNORECASE)
WHOLE_VARIABLE = re.compile(r"'?\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}'?")


def variables(path: Path) -> dict[str, bool]:
    """Every ``${VAR}`` of the file, mapped to whether it has a ``:-default``."""
    found: dict[str, bool] = {}
    for m in VARIABLE.finditer(path.read_text(encoding="utf-8")):
        found[m.group(1)] = found.get(m.group(1), True) and m.group(2) is not None
    return found


def dummy(name: str) -> str:
    """A stand-in value: a number for ports, otherwise a recognizable token valid in hosts and passwords."""
    return "54321" if "PORT" in name.upper() else f"dummy-{name.lower().replace('_', '-')}"


def dummy_env(path: Path) -> dict[str, str]:
    """A value for every variable without a default; one with a default (an address, e.g.
    ``${APEX_API_URL:-https://api.example.com}``, which a sandbox profile's profile.env sets) keeps it."""
    return {name: dummy(name) for name, has_default in variables(path).items() if not has_default}


def only_interpolated(secret: str, env: dict[str, str]) -> bool:
    """True when the secret is made only of interpolated values (no literal character of its own)."""
    rest = secret
    for value in sorted(env.values(), key=len, reverse=True):
        rest = rest.replace(value, "")
    return not rest


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


@pytest.fixture(params=FILES, ids=ids(FILES))
def example(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


def test_the_runbook_examples_exist_and_name_their_runbook() -> None:
    names = {p.name for p in FILES}
    for name, runbook in RUNBOOK_EXAMPLES.items():
        assert name in names, f"examples/{name} is missing"
        head = (EXAMPLES / name).read_text(encoding="utf-8").split("\nenvironment:")[0]
        assert runbook in head, f"examples/{name}: the header comment must name runbook {runbook}"
        assert "NOT expressible yet" in head, f"examples/{name}: the header must list the runbook's gaps"
    assert (EXAMPLES / "README.md").is_file()


def test_loads(example: Path) -> None:
    inv = load(example, env=dummy_env(example))
    assert isinstance(inv, Inventory)
    assert inv.source == str(example)


def test_has_at_least_one_entry(example: Path) -> None:
    assert load(example, env=dummy_env(example)).count() >= 1


def test_production_flag_matches_the_name(example: Path) -> None:
    inv = load(example, env=dummy_env(example))
    if "production" in example.stem:
        assert inv.production is True, f"{example.name} describes production: set `production: true`"
    else:
        assert inv.production is False, f"{example.name} is not production: set `production: false`"


def literal_passwords_in_text(path: Path) -> list[str]:
    """Every ``scheme://user:password@`` and ``password=`` of the file (comments included) that is not a ``${VAR}``."""
    found = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for m in [*URL_PASSWORD.finditer(line), *KEYWORD_PASSWORD.finditer(line)]:
            if m.group(1) and not WHOLE_VARIABLE.fullmatch(m.group(1)):
                found.append(f"{path.name}:{lineno}: literal password {m.group(1)!r}")
    return found


def literal_secrets_after_loading(path: Path, env: dict[str, str]) -> list[str]:
    """Every URL/DSN password (replicas included) and secret header value not made of interpolated values."""
    inv = load(path, env=env)
    found = []
    for kind in KINDS:
        for name, entry in inv.targets(kind).items():
            where = f"{path.name}: {kind}.{name}"
            dsns = [getattr(entry, a) for a in ("url", "dsn") if isinstance(getattr(entry, a, None), str)]
            dsns += [r.dsn for r in getattr(entry, "replicas", {}).values()]
            found += [f"{where}: literal password in {d!r}" for d in dsns
                      for secret in url_secrets(d) if not only_interpolated(secret, env)]
            found += [f"{where}: header {h} has a literal value" for h, v in getattr(entry, "headers", {}).items()
                      if SECRET_HEADER.search(h) and not any(e in v for e in env.values())]
    return found


def test_no_literal_password_in_the_text(example: Path) -> None:
    assert literal_passwords_in_text(example) == [], "write every password as ${SOME_PASSWORD}"


def test_no_literal_secret_after_loading(example: Path) -> None:
    assert literal_secrets_after_loading(example, dummy_env(example)) == [], "use ${SOME_PASSWORD} / ${SOME_TOKEN}"


def test_the_secret_checks_catch_literals(tmp_path: Path) -> None:
    """The two checks above would fail on a file with literal secrets (so their passing means something)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "environment: bad\n"
        "http:\n  api: {url: 'https://api.example.com', headers: {Authorization: 'Bearer abc123'}}\n"
        "postgres:\n  main:\n    dsn: postgresql://ro:hunter2@db:5432/app\n"
        "    replicas: {r1: {dsn: 'host=r1 user=ro password=${PG_PASSWORD}x'}}\n"
        "redis:\n  main: {url: 'redis://:${REDIS_PASSWORD}@redis:6379/0'}\n",
        encoding="utf-8",
    )
    assert len(literal_passwords_in_text(bad)) == 2  # hunter2, and ${PG_PASSWORD}x
    found = literal_secrets_after_loading(bad, dummy_env(bad))
    assert len(found) == 3, found  # the dsn, the replica's password=…x, the Authorization header


def test_example_variables_are_all_reported_as_secrets_when_secret(example: Path) -> None:
    """What the loader masks includes the interpolated passwords, so no report ever shows them."""
    env = dummy_env(example)
    inv = load(example, env=env)
    for name, value in env.items():
        if re.search(r"PASS|TOKEN|SECRET|KEY", name, re.IGNORECASE):
            assert value in inv.secrets, f"{example.name}: ${{{name}}} would not be masked"


REQUIRED = [(p, var) for p in FILES for var, has_default in variables(p).items() if not has_default]


@pytest.mark.parametrize(("path", "var"), REQUIRED, ids=[f"{p.name}:{v}" for p, v in REQUIRED])
def test_a_missing_variable_is_named(path: Path, var: str) -> None:
    env = dummy_env(path)
    del env[var]
    with pytest.raises(InventoryError, match=re.escape(f"${{{var}}} is not set")) as caught:
        load(path, env=env)
    assert str(path) in str(caught.value)
    assert f"export {var}=" in str(caught.value)


def test_the_examples_readme_lists_every_variable_each_example_needs() -> None:
    """The table a user exports from: a variable left out there is an error on their first run."""
    rows = re.findall(r"^\| `([^`]+\.yaml)` \| (.*) \|$", (EXAMPLES / "README.md").read_text(encoding="utf-8"), re.M)
    listed = {name: set(re.findall(r"`([A-Z0-9_]+)`", cells)) for name, cells in rows}
    needed = {name: {v for v, has_default in variables(EXAMPLES / name).items() if not has_default}
              for name in RUNBOOK_EXAMPLES}
    assert {name: listed.get(name, set()) for name in needed} == needed
