"""Tests of secret masking: known secrets, URL/DSN passwords and ``password=…`` pairs become ``***``."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsproof.inventory import loads
from opsproof.redact import MASK, Redactor


def test_dsn_password() -> None:
    assert Redactor()("connect postgresql://app:s3cret@db:5432/app failed") == (
        "connect postgresql://app:***@db:5432/app failed"
    )


def test_url_password_with_empty_user() -> None:
    assert Redactor()("redis://:hunter22@cache:6379/0") == "redis://:***@cache:6379/0"


def test_url_without_password_is_unchanged() -> None:
    text = "https://user@example.com:8443/path and http://host:80/x"
    assert Redactor()(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("host=db password=hunter2 user=app", "host=db password=*** user=app"),
        ("host=db password='a b c' user=app", "host=db password='***' user=app"),
        ('token="x y"', 'token="***"'),
        ("Password: hunter2", "Password: ***"),
        ("passwd=x pwd=y secret=z", "passwd=*** pwd=*** secret=***"),
        # no word boundary needed before the key (these leaked before)
        ("PGPASSWORD=hunter2 psql -h db", "PGPASSWORD=*** psql -h db"),
        ("GET /?api_token=abc123 HTTP/1.1", "GET /?api_token=*** HTTP/1.1"),
        ("client_secret: abc", "client_secret: ***"),
        # words that merely contain a key are left alone
        ("max_tokens: 5, secrets: 3", "max_tokens: 5, secrets: 3"),
    ],
)
def test_password_pairs(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


def test_known_secret_inside_a_longer_text() -> None:
    redact = Redactor(["tok-abc123"])
    assert redact("401 from api: Authorization: Bearer tok-abc123 was refused") == (
        "401 from api: Authorization: Bearer *** was refused"
    )
    assert redact("xx-tok-abc123-yy") == "xx-***-yy"  # also inside a word
    assert redact("tok-abc12") == "tok-abc12"  # a prefix of the secret is not the secret


def test_longest_secret_is_masked_first() -> None:
    # "abc" first would leave "***def" and leak "def"
    assert Redactor(["abc", "abcdef"])("x abcdef y abc") == "x *** y ***"


def test_json_text_stays_valid_json() -> None:
    redact = Redactor(["tok-abc123", 'quo"te\\pw'])
    record = {
        "password": "p4ss w0rd",
        "api_token": 42,  # a secret key's value is masked whatever its type
        "max_tokens": 7,
        "secret": {"name": "db", "password": None},
        "nested": {"dsn": "postgresql://u:pw@db/app", "conn": "host=db password=pg-pw", "note": "key tok-abc123"},
        "list": ["redis://:rpw@cache:6379", 'quo"te\\pw'],
    }
    out = redact(json.dumps(record))
    assert json.loads(out) == {
        "password": MASK,
        "api_token": MASK,
        "max_tokens": 7,
        "secret": {"name": "db", "password": None},
        "nested": {"dsn": "postgresql://u:***@db/app", "conn": "host=db password=***", "note": "key ***"},
        "list": ["redis://:***@cache:6379", MASK],
    }
    for leaked in ("p4ss", "pw@", "pg-pw", "tok-abc123", "rpw", "quo"):
        assert leaked not in out


def test_json_escaped_secret_is_masked() -> None:
    # a password with a quote or backslash appears escaped in JSON, also in a fragment inside a log line
    redact = Redactor(['a"b\\c'])
    assert redact(json.dumps({"x": 'say a"b\\c'})) == '{"x": "say ***"}'
    assert redact("got " + json.dumps({"x": 'say a"b\\c'})) == 'got {"x": "say ***"}'


@pytest.mark.parametrize(
    "record",
    [
        {"msg": "libpq: missing password=", "b": 1},  # the value ends right after "password="
        {"dsn": "host=db password=abc"},  # before: the closing quote was swallowed with the password
        {"error": 'token: "abc"'},
        {"password=": ""},
    ],
)
def test_json_with_password_pairs_stays_json(record: dict[str, object]) -> None:
    # Bug: redacting such JSON gave invalid JSON, and Result.redacted() raised JSONDecodeError on it.
    out = Redactor()(json.dumps(record))
    assert "abc" not in out
    assert json.loads(out).keys() == record.keys()


def test_json_keeps_non_ascii_as_written() -> None:
    redact = Redactor()
    assert redact(json.dumps({"é": "password=x"}, ensure_ascii=False)) == '{"é": "password=***"}'
    assert redact(json.dumps({"é": "password=x"})) == '{"\\u00e9": "password=***"}'


def test_text_that_only_looks_like_json() -> None:
    assert Redactor()("{password=hunter2, user=app}") == "{password=*** user=app}"


def test_short_secrets_are_ignored() -> None:
    # Secrets shorter than 3 characters are not masked: an (empty) one-letter or two-letter secret would
    # mask every "a" or "1" in every output and make it unreadable (and "" would match everywhere).
    redact = Redactor(["", "a", "ab", "abc"])
    assert redact.secrets == ["abc"]
    assert redact("a cab abc") == "a cab ***"


def test_extend_adds_secrets() -> None:
    redact = Redactor(["first-secret"]).extend(["second-secret"])
    assert redact("first-secret second-secret") == "*** ***"


def test_secrets_from_an_inventory_are_masked() -> None:
    inv = loads(
        "environment: st\n"
        "postgres: {main: {dsn: 'postgresql://app:${PGPASSWORD}@db/app'}}\n"
        "http: {api: {url: 'http://api', headers: {Authorization: 'Bearer ${API_TOKEN}'}}}\n",
        env={"PGPASSWORD": "pg-s3cret", "API_TOKEN": "tok-abc123"},
    )
    redact = Redactor(inv.secrets)
    assert redact("auth failed for pg-s3cret; sent tok-abc123") == "auth failed for ***; sent ***"


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://app:s3cret@db/app",
        "password=hunter2 token='a b' secret=\"c d\"",
        '{"password": "x", "token": "y"}',
        "s://password=a:b@c",
        "s://u:pwd: @",
        "x password=*** y",
    ],
)
def test_redacting_twice_is_stable(text: str) -> None:
    redact = Redactor(["hunter2", "s3cret"])
    once = redact(text)
    assert redact(once) == once


FRAGMENTS = st.sampled_from(
    [
        "password",
        "PGPASSWORD",
        "token",
        "secret",
        "pwd",
        "=",
        ":",
        " ",
        "\n",
        "'",
        '"',
        "\\",
        "@",
        "/",
        "://",
        "redis",
        "u",
        "pw",
        "hunter2",
        "tok-1",
        "*",
        "***",
        ",",
        "{",
        "}",
        "a",
        "é",
    ]
)
TEXTS = st.lists(FRAGMENTS, max_size=30).map("".join)
# Idempotence holds for secrets without "*": a secret such as "a**" could be formed anew by the mask itself.
SECRETS = st.lists(st.text(alphabet=st.characters(blacklist_characters="*"), min_size=0, max_size=8), max_size=4)


@settings(max_examples=300, deadline=None)
@given(TEXTS, SECRETS)
def test_redaction_is_idempotent(text: str, secrets: list[str]) -> None:
    redact = Redactor([*secrets, "hunter2", "tok-1"])
    once = redact(text)
    assert redact(once) == once
    assert "hunter2" not in once
    assert "tok-1" not in once


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(TEXTS, st.one_of(TEXTS, st.integers(), st.none(), st.lists(TEXTS, max_size=3)), max_size=5))
def test_redacted_json_is_still_json(record: dict[str, object]) -> None:
    # Result.redacted() and the plugin's record file do json.loads(redact(json.dumps(...))).
    redact = Redactor(["hunter2", "tok-1"])
    for ensure_ascii in (True, False):
        out = redact(json.dumps(record, ensure_ascii=ensure_ascii))
        json.loads(out)
        assert redact(out) == out
        assert "hunter2" not in out
        assert "tok-1" not in out


def test_clean_text_takes_the_fast_path_unchanged() -> None:
    text = '{"status": 200, "body": {"status": "ok"}, "url": "http://db:5432/x"}'
    assert Redactor(["hunter22"])(text) is text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"\\u0070assword": "x"}', '{"password": "***"}'),  # a key word spelled with a JSON escape
        ('{"k": "hunter\\u0032\\u0032"}', '{"k": "***"}'),  # the secret spelled with JSON escapes
        ('{"dsn": "redis://:hunter22@cache"}', '{"dsn": "redis://:***@cache"}'),
        ("met hunter22 here", "met *** here"),
    ],
)
def test_fast_path_never_skips_a_secret(text: str, expected: str) -> None:
    assert Redactor(["hunter22"])(text) == expected


def test_escaped_non_ascii_takes_the_fast_path_unchanged() -> None:
    # json.dumps writes "→", "≤", "é" as \u escapes: most records of a healthy run have some, and nothing to mask
    text = json.dumps({"observed": "took 28 ms → answered", "expected": "≤ 1000 ms", "target": "http[café]"})
    assert "\\u2192" in text
    assert Redactor(["hunter22", "pässword1"])(text) is text


class _AlwaysSlow(Redactor):
    def _may_hide_secrets(self, text: str) -> bool:
        return True


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(TEXTS, st.one_of(TEXTS, st.lists(st.sampled_from(["→", "≤", "é", "\\u0070", "x"]))), max_size=4))
def test_fast_path_agrees_with_the_slow_path(record: dict[str, object]) -> None:
    secrets = ["hunter2", "tok-1", "pässword1", "a\"u"]  # a quote: escaped once in a record, twice when nested
    fast, slow = Redactor(secrets), _AlwaysSlow(secrets)
    for ensure_ascii in (True, False):
        text = json.dumps(record, ensure_ascii=ensure_ascii)
        assert json.loads(fast(text)) == json.loads(slow(text))
        nested = json.dumps({"body": text})  # a JSON document inside a string: escaped twice
        assert json.loads(fast(nested)) == json.loads(slow(nested))


def test_a_secret_escaped_twice_beside_non_ascii_is_masked() -> None:
    # a JSON document inside a JSON string (a response body in the evidence): the quote is escaped twice
    inner = json.dumps({"x": 'say a"b → here'})
    out = Redactor(['a"b'])(json.dumps({"body": inner}))
    assert json.loads(json.loads(out)["body"]) == {"x": "say *** → here"}
