"""A kubeconfig's inline credentials (``client-key-data`` …) are files only while opsproof uses them: the kubernetes
client writes them to the temp folder and would remove them only when the interpreter exits (never after a kill
or a crash, and not during a long chaos run or drill). Connections keeps them in a private folder of its own and
removes it when it closes."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

import pytest
import yaml

from opsproof.inventory import loads
from opsproof.probes import Connections

KEY = "-----BEGIN PRIVATE KEY-----\nnot-a-real-key-but-a-secret-all-the-same\n-----END PRIVATE KEY-----\n"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temp folder, for this test: where the client would leave its files."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def kubernetes_entry(tmp_path: Path) -> object:
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://k8s.test:6443",
                                               "certificate-authority-data": b64("CA")}}],
        "users": [{"name": "u", "user": {"client-certificate-data": b64("CERT"), "client-key-data": b64(KEY)}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }))
    return loads(f"environment: t\nkubernetes:\n  k: {{namespace: app, kubeconfig: {config}}}\n").kubernetes["k"]


def holding_the_key(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.read_text(errors="replace") == KEY]


def test_the_client_key_file_is_gone_once_the_connections_close(tmp_path: Path, temp: Path) -> None:
    entry = kubernetes_entry(tmp_path)
    with Connections() as conns:
        client = conns.kubernetes("kubernetes[k]", entry)  # type: ignore[arg-type]
        assert Path(client.configuration.key_file).read_text() == KEY  # the client reads it on each handshake
        assert holding_the_key(temp)
    assert holding_the_key(temp) == []
    assert list(temp.iterdir()) == []


def test_the_next_connections_get_files_of_their_own(tmp_path: Path, temp: Path) -> None:
    """The client caches "content → file" for the whole process: a second load of the same kubeconfig must not be
    handed the file the first one's close removed."""
    entry = kubernetes_entry(tmp_path)
    for _ in range(2):
        with Connections() as conns:
            client = conns.kubernetes("kubernetes[k]", entry)  # type: ignore[arg-type]
            assert Path(client.configuration.key_file).read_text() == KEY
    assert list(temp.iterdir()) == []
