"""How targets are reached: one client per target, reused, with timeouts on every call.

The suite must never be what exhausts a production connection pool: each PostgreSQL target gets one
read-only session (``default_transaction_read_only = on``) guarded by a lock, each Redis target one
connection, and HTTP goes through one ``httpx.Client`` per probing thread (a few keep-alive connections each,
one request at a time). One client per thread, not one shared by all: httpcore's pool takes one lock and scans
every connection on each request, which with 32 threads cost more CPU than the requests themselves. The SSL
contexts (loading the system CA store takes ~10 ms of CPU) are made once and shared.
"""

from __future__ import annotations

import contextlib
import math
import ssl
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx

from opsproof.probes.bounded import bind_client, bind_pool_manager, redis_pool
from opsproof.probes.deadline import Expired, bound, current
from opsproof.probes.kubeconfig_files import CredentialFiles
from opsproof.probes.watchdog import Watchdog

if TYPE_CHECKING:  # imported where used: a run with only HTTP checks does not pay for them (~0.2 s)
    import kubernetes
    import psycopg
    import redis

    from opsproof.inventory import Kubernetes



LATE_S = 0.05  # how long past its deadline a check waits for the entry's session, for the holder's reason


def tls_verify(verify: bool | str) -> bool | ssl.SSLContext:
    """An inventory's ``verify_tls`` for httpx: a CA bundle's path becomes an SSL context (httpx deprecates str)."""
    return ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify

def environment_proxies() -> dict[str, str | None]:
    """The environment's proxies (``HTTPS_PROXY``, ``NO_PROXY``, …) as httpx reads them, read once.

    Read by the thread that makes the :class:`Connections`, not by each probe thread: httpx reads them when a client
    is made, through ``urllib.request.getproxies()``, which iterates ``os.environ``; pytest sets and removes
    ``PYTEST_CURRENT_TEST`` on the main thread around every test, and an iteration that meets a key removed
    between listing and reading raises ``KeyError: 'PYTEST_CURRENT_TEST'`` — a health check failed on it."""
    from httpx._utils import get_environment_proxies  # httpx's own reading of them, so the two cannot differ

    return get_environment_proxies()


def _kubernetes_proxy(conf: kubernetes.client.Configuration, proxies: dict[str, str]) -> None:
    """The proxy for a Kubernetes API server, as the client would take it from the environment (its scheme's,
    else ``all``), but from the snapshot: ``Configuration`` calls ``getproxies()`` when made and when its host is
    set, in the probe thread (see :func:`environment_proxies`). A kubeconfig's ``proxy-url`` wins, as in kubectl."""
    if conf.proxy == "":  # not set by the kubeconfig
        conf.proxy = proxies.get(urllib.parse.urlparse(conf.host).scheme) or proxies.get("all") or None


def _redis_driver() -> dict[str, Any]:
    """The library version for CLIENT SETINFO, given once: left to itself, redis-py ≥ 8 looks its own version up in
    the installed distributions for every connection (3.4 → 3.0 ms of CPU per new connection, measured here)."""
    import redis

    try:
        from redis.driver_info import DriverInfo
    except ImportError:  # redis-py < 8: the version was a constant
        return {}
    return {"driver_info": DriverInfo(lib_version=redis.__version__)}


class _NoCookies(httpx.Cookies):
    """A cookie jar that stays empty: what an answer sets is not looked at."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        raise ValueError("opsproof's check clients keep no cookies")


_NO_COOKIES = _NoCookies()


class CheckClient(httpx.Client):
    """An ``httpx.Client`` that keeps no cookies: each check is one request, as ``curl -f`` makes it. A client
    serves every target its probe thread checks, and cookies do not tell ports apart: kept, a ``Set-Cookie`` from
    one service on 127.0.0.1 would ride along to the next one checked there. (It also spares httpx's cookie jar,
    a sixth of the CPU of a health check.)"""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        if cookies:
            raise ValueError("opsproof's check clients keep no cookies")


class Connections:
    """Lazily opened, reused clients. Thread-safe; close() releases everything."""

    def __init__(
        self,
        http_transport: httpx.BaseTransport | None = None,
        max_http_connections: int = 4,
    ) -> None:
        self._lock = threading.Lock()
        self._pg: dict[str, tuple[threading.Lock, list[psycopg.Connection[Any]]]] = {}
        self._pg_failed: dict[str, Exception] = {}  # why a session could not be opened, for the run
        self._redis: dict[str, redis.Redis] = {}
        self._http: dict[tuple[int, str], httpx.Client] = {}  # (thread id, verify) -> client
        self._ssl: dict[tuple[str, ...], ssl.SSLContext] = {}
        self._k8s: dict[str, tuple[threading.Lock, list[kubernetes.client.ApiClient]]] = {}
        self._k8s_files = CredentialFiles()  # a kubeconfig's inline credentials, removed at close
        self._http_transport = http_transport
        self._max_http = max_http_connections
        self._proxies = environment_proxies() if http_transport is None else {}  # as httpx: none with a transport
        self._urllib_proxies = urllib.request.getproxies()  # the same, in urllib's form, for the Kubernetes client
        self._s3: dict[str, Any] = {}  # target id -> boto3 S3 client
        self._s3_lock = threading.Lock()

    # --- HTTP -----------------------------------------------------------------------------------------
    def http(self, verify: bool | str = True) -> httpx.Client:
        """The calling thread's client for this ``verify_tls`` (at most ``max_http_connections`` connections)."""
        key = (threading.get_ident(), str(verify))
        client = self._http.get(key)
        if client is not None:
            return client
        context = self.ssl_context(verify, store="httpx")
        with self._lock:
            client = self._http.get(key)
            if client is None:
                limits = httpx.Limits(max_connections=self._max_http, max_keepalive_connections=self._max_http)
                mounts: dict[str, httpx.BaseTransport | None] = {
                    pattern: None if url is None else httpx.HTTPTransport(verify=context, limits=limits,
                                                                         proxy=httpx.Proxy(url))
                    for pattern, url in self._proxies.items()
                }
                client = bind_client(CheckClient(
                    transport=self._http_transport,
                    mounts=mounts,
                    trust_env=False,  # the environment was read once, above (see environment_proxies)
                    verify=context,
                    limits=limits,
                    follow_redirects=False,
                    headers={"User-Agent": "opsproof", "Accept-Encoding": "gzip, deflate"},  # decoded to the cap
                ))
                self._http[key] = client
            return client

    def ssl_context(self, verify: bool | str = True, *, check: bool = True, store: str = "system") -> ssl.SSLContext:
        """A shared client SSL context: a CA bundle's path, or ``True`` for the default store (``"system"``:
        the OS's, as ``openssl`` uses; ``"httpx"``: certifi's, as httpx uses); ``check=False`` reads any
        certificate (no chain or hostname verification)."""
        key = (str(verify), str(check), store)
        with self._lock:
            context = self._ssl.get(key)
            if context is None:
                if isinstance(verify, str):
                    context = ssl.create_default_context(cafile=verify)
                elif store == "httpx":
                    context = httpx.create_ssl_context(verify=verify)
                else:
                    context = ssl.create_default_context()
                if not check:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                self._ssl[key] = context
            return context

    # --- PostgreSQL -----------------------------------------------------------------------------------
    @contextmanager
    def postgres(self, key: str, dsn: str, timeout_s: float, *, remember: bool = True
                 ) -> Iterator[psycopg.Connection[Any]]:
        """One read-only session per DSN, used by one probe at a time; a broken session is replaced. A session that
        could not be opened is not tried again in this run (``remember``): the key's next checks fail at once with
        the same reason, instead of each waiting out its own connect timeout on the one serialized session."""
        import psycopg

        with self._lock:
            lock, slot = self._pg.setdefault(key, (threading.Lock(), []))
        wait = bound(timeout_s * 3, "pool")
        assert wait is not None
        # checks started together end together: the one holding the session ends at its deadline, which is (within
        # a few ms) this one's; a moment more gets its reason (remembered below) rather than "waited for it"
        if not (lock.acquire(timeout=wait) or lock.acquire(timeout=LATE_S)):
            raise TimeoutError(f"session busy for {wait:.1f} s")
        try:
            failure = self._pg_failed.get(key)
            if failure is not None:
                raise failure.with_traceback(None)
            if not slot or slot[0].closed or slot[0].broken:
                slot.clear()
                try:
                    deadline = current()  # the check's deadline bounds each statement too (the entry's timeout_s)
                    statement_s = timeout_s if deadline is None or deadline.seconds is None else deadline.seconds
                    slot.append(self._pg_connect(dsn, timeout_s, statement_s))
                except Exception as exc:
                    if remember:
                        self._pg_failed[key] = exc.with_traceback(None)
                    raise
            conn = slot[0]
            watch = Watchdog.start()  # psycopg waits on the socket for ever: it is shut at the check's deadline
            if watch is not None:
                watch.add(conn.pgconn.socket)
            try:
                yield conn
            except psycopg.Error:
                if watch is not None:
                    watch.cancel()
                conn.close()
                slot.clear()
                if watch is None or not watch.cut:
                    raise
                hung = Expired(f"no answer within {watch.seconds:g} s (connected; the server answered no query)",
                               {"deadline_s": watch.seconds, "waiting_for": "answer"})
                if remember:
                    self._pg_failed[key] = hung
                raise hung from None
            finally:
                if watch is not None:
                    watch.cancel()
        finally:
            lock.release()

    @staticmethod
    def _pg_connect(dsn: str, timeout_s: float, statement_s: float | None = None) -> psycopg.Connection[Any]:
        """A session within ``timeout_s``. psycopg (like libpq) waits whole seconds, at least 2: it connects in a
        thread of its own, with a bound of its own a second longer than ours; when ours passes first the thread is
        left to end on it (≤ 2 s later), and a session it opens after that is closed."""
        import psycopg

        ms = int((statement_s or timeout_s) * 1000)
        future: Future[psycopg.Connection[Any]] = Future()

        def attempt() -> None:
            try:
                future.set_result(psycopg.connect(
                    dsn,
                    connect_timeout=max(2, math.ceil(timeout_s) + 1),  # ours ends first, so the reason is ours
                    autocommit=True,
                    application_name="opsproof",
                    options=(
                        f"-c default_transaction_read_only=on -c statement_timeout={ms} "
                        f"-c lock_timeout={ms} -c idle_in_transaction_session_timeout={ms * 2}"
                    ),
                ))
            except BaseException as exc:  # handed to the waiter, which raises it; without the frames that hold
                future.set_exception(exc.with_traceback(None))  # psycopg's half-open connection (and its socket)

        threading.Thread(target=attempt, name="opsproof-pg-connect", daemon=True).start()
        wait = bound(timeout_s, "connect")
        try:
            return future.result(timeout=wait)
        except TimeoutError:
            if not future.done():
                future.add_done_callback(_close_late)
                deadline = current()  # cut to what was left of the check's deadline: that deadline is the bound
                cut = deadline is not None and deadline.seconds is not None and wait != timeout_s
                within = min(timeout_s, deadline.seconds) if cut and deadline and deadline.seconds else timeout_s
                raise Expired(f"no connection within {within:g} s (connect)",
                              {"connect_timeout_s": timeout_s}) from None
        return future.result()  # it ended meanwhile, or with a TimeoutError of its own

    # --- Redis ----------------------------------------------------------------------------------------
    def redis(self, key: str, url: str, timeout_s: float) -> redis.Redis:
        import redis

        with self._lock:
            client = self._redis.get(key)
            if client is None:
                pool = redis_pool(
                    url,
                    max_connections=1,
                    timeout=timeout_s,
                    socket_timeout=timeout_s,
                    socket_connect_timeout=timeout_s,
                    client_name="opsproof",
                    decode_responses=True,
                    **_redis_driver(),
                )
                client = redis.Redis(connection_pool=pool)
                self._redis[key] = client
            return client

    # --- Kubernetes -----------------------------------------------------------------------------------
    def kubernetes(self, key: str, cfg: Kubernetes) -> kubernetes.client.ApiClient:
        """One API client per target (kubeconfig context or in-cluster service account), reused.

        No urllib3 retries: the caller's ``_request_timeout`` bounds each call. The kubeconfig is never written
        back (``persist_config=False``), even when a token is refreshed.
        """
        import kubernetes

        with self._lock:
            lock, slot = self._k8s.setdefault(key, (threading.Lock(), []))
        with lock:  # loading a kubeconfig may run an exec plugin: not under the lock shared by every kind
            if not slot:
                # proxy "": not from the environment, which a probe thread must not read (see _kubernetes_proxy)
                conf = kubernetes.client.Configuration(proxy="", no_proxy=self._urllib_proxies.get("no", ""))
                conf.retries = 0
                if cfg.in_cluster:
                    kubernetes.config.load_incluster_config(client_configuration=conf)  # type: ignore[no-untyped-call]
                else:
                    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                        config_file=cfg.kubeconfig, context=cfg.context, persist_config=False,
                        client_configuration=conf, temp_file_path=self._k8s_files.folder())
                _kubernetes_proxy(conf, self._urllib_proxies)
                api = kubernetes.client.ApiClient(conf)
                bind_pool_manager(api.rest_client.pool_manager)  # its answers are read within the deadline
                slot.append(api)
            return slot[0]

    def s3(self, key: str, cfg: Any) -> Any:
        """One boto3 S3 client per target (:mod:`opsproof.probes.s3_client`), reused."""
        from opsproof.probes.s3_client import make_client

        with self._s3_lock:  # its own lock: a build (boto3 loads its service model) holds up no other kind
            if key not in self._s3:
                self._s3[key] = make_client(cfg)
            return self._s3[key]

    def close(self) -> None:
        closers: list[Callable[[], object]] = []
        with self._s3_lock:
            closers.extend(c.close for c in self._s3.values())
            self._s3.clear()
        with self._lock:
            for _lock, slot in self._pg.values():
                closers.extend(c.close for c in slot)
            closers.extend(c.close for c in self._redis.values())
            closers.extend(c.close for c in self._http.values())
            closers.extend(c.close for _lock, slot in self._k8s.values() for c in slot)
            self._pg.clear()
            self._pg_failed.clear()
            self._k8s.clear()
            self._redis.clear()
            self._http.clear()
            self._ssl.clear()
        if len(closers) > 1:  # a fleet's worth of clients: each close waits for its socket, so close them at once
            try:
                with ThreadPoolExecutor(max_workers=min(16, len(closers)), thread_name_prefix="opsproof-close") as pool:
                    pool.map(_quietly, closers)
                closers = []
            except RuntimeError:  # at interpreter exit (an atexit close) no new thread may start: one after another
                pass
        for close in closers:
            _quietly(close)
        self._k8s_files.remove()

    def __enter__(self) -> Connections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_late(future: Future[Any]) -> None:
    """A session that opened after its check gave up on it: nobody will use it."""
    if future.exception() is None:
        _quietly(future.result().close)


def _quietly(close: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):  # closing a broken client must not hide the results
        close()
