"""Where the kubernetes client keeps a kubeconfig's inline credentials while opsproof uses them.

The client writes ``certificate-authority-data``, ``client-certificate-data`` and ``client-key-data`` (and an exec
plugin's certificates) to files, because urllib3 reads them from paths on each TLS handshake; by default they go to
the system temp folder and are removed only when the interpreter exits — never after a kill or a crash, and not
while a long chaos run or drill goes on. :class:`CredentialFiles` gives them one private folder (mode 0700) per
:class:`~opsproof.probes.connections.Connections`, removed when those close.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading


class CredentialFiles:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folder: str | None = None

    def folder(self) -> str:
        """The private folder, made on first use."""
        with self._lock:
            if self._folder is None:
                self._folder = tempfile.mkdtemp(prefix="opsproof-k8s-credentials-")
            return self._folder

    def remove(self) -> None:
        """Remove the folder and every file in it; the clients that read them must be closed first."""
        with self._lock:
            folder, self._folder = self._folder, None
        if folder is None:
            return
        shutil.rmtree(folder, ignore_errors=True)
        from kubernetes.config import kube_config

        # The client remembers "content → file" for the whole process: forget the files just removed, or the next
        # load of the same kubeconfig would be handed a path that no longer exists.
        cache = getattr(kube_config, "_temp_files", None)
        if isinstance(cache, dict):
            for content, path in list(cache.items()):
                if str(path).startswith(folder + os.sep):
                    del cache[content]
