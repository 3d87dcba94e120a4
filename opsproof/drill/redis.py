"""The Redis drill: restore an RDB snapshot into a scratch redis-server and compare it with what it should hold.

found      newest RDB matching the pattern (or a fresh one, ``redis-cli --rdb``), its age against the RPO
integrity  sha256 against the manifest; ``redis-check-rdb`` (structure and the file's own CRC64)
provision  a folder and a loopback port for the scratch redis-server
restore    redis-server started on a copy of the RDB, until it has loaded it
verify     key count = the file's (and the manifest's); a sample of keys compared with the source (``DUMP``,
           read-only), at least ``min_sample_match`` of them equal
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry

from opsproof.drill import backup as backups
from opsproof.drill.phases import Drill, Outcome, _span
from opsproof.drill.scratch import ScratchRedis
from opsproof.inventory import Backups, Redis


class RedisDrill(Drill):
    kind = "redis"

    def __init__(self, name: str, cfg: Backups, source: Redis, folder: Path,
                 evidence_dir: Path | None = None, redact: Callable[[str], str] = str) -> None:
        super().__init__(name, cfg, folder, evidence_dir, redact)
        self.source = source
        self.facts: dict[str, Any] = {}
        self.scratch: ScratchRedis | None = None

    suffix = ".rdb"

    def _take(self, out: Path, pattern: str) -> tuple[Path, dict[str, Any]]:
        return backups.take_redis(self.source.url, out, pattern, self.source_name, self.source.timeout_s * 60)

    def _format(self) -> str:
        return "rdb"

    def _integrity(self) -> Outcome:
        assert self.backup is not None
        digest = backups.sha256(self.backup)
        problems = []
        checks = ["redis-check-rdb"]
        if self.manifest is not None:
            checks.insert(0, "sha256 = manifest")
            if self.manifest.get("sha256") != digest:
                problems.append(f"sha256 {digest[:12]}… differs from the manifest's "
                                f"{str(self.manifest.get('sha256'))[:12]}… (the file changed after the backup)")
        self.facts = backups.rdb_facts(self.backup)
        if not self.facts["ok"]:
            problems.append(f"redis-check-rdb rejects {self.backup.name}: {self.facts.get('error')}")
        self.restorable = bool(self.facts["ok"])
        if "ctime" in self.facts and self.manifest is None:
            self.backup_time = float(self.facts["ctime"])  # the RDB says when it was written
        expected = "an intact RDB (" + ", ".join(checks) + ")"
        evidence = {"sha256": digest, "checks": checks, **{k: v for k, v in self.facts.items() if k != "ok"}}
        if problems:
            return Outcome(False, "; ".join(problems), expected, evidence)
        return Outcome(True, f"RDB intact: {self.facts.get('keys', 0):,} keys; sha256 {digest[:16]}…", expected,
                       evidence)

    def _provision(self) -> Outcome:
        self.scratch = ScratchRedis(self.folder)
        return Outcome(True, self.scratch.where, "a scratch redis-server", {"scratch": self.scratch.where})

    def _restore(self) -> Outcome:
        assert self.scratch is not None
        assert self.backup is not None
        t0 = time.perf_counter()
        self.scratch.start(self.backup)
        elapsed = time.perf_counter() - t0
        return Outcome(True, f"redis-server loaded {self.backup.name} in {_span(elapsed)}", "the RDB loaded",
                       {"duration_s": round(elapsed, 3), "port": self.scratch.port})

    def _verify(self) -> Outcome:
        assert self.scratch is not None
        assert self.backup is not None
        problems: list[str] = []
        in_file = int(self.facts.get("keys", 0))
        if self.manifest is not None and "keys_in_file" in self.manifest and self.manifest["keys_in_file"] != in_file:
            problems.append(f"the RDB holds {in_file:,} keys, the manifest {int(self.manifest['keys_in_file']):,}")
        with self.scratch.client() as restored:
            counts = {int(db[2:]): int(v["keys"]) for db, v in restored.info("keyspace").items()}
            total = sum(counts.values())
            sample = self._sample(restored, counts)
        # redis-server drops keys already expired when it loads; those that expired between the check and the
        # load are counted by checking the file once more
        most = in_file - int(self.facts.get("already_expired", 0))
        least = most if total == most else in_file - int(backups.rdb_facts(self.backup).get("already_expired", 0))
        if not least <= total <= most:
            problems.append(f"{total:,} keys restored, the file holds {most:,} unexpired")
        self.verified.append(f"{total:,} keys restored = the RDB's unexpired keys"
                             + (" (file's key count = manifest)" if self.manifest else ""))
        evidence = {"keys_restored": total, "keys_in_file": in_file, "by_db": counts, **sample}
        compared = sample["sample_compared"]
        if compared:
            ratio = sample["sample_equal"] / compared
            self.verified.append(f"{sample['sample_equal']}/{compared} sampled values equal to the source's")
            if ratio < self.cfg.min_sample_match:
                problems.append(f"only {sample['sample_equal']}/{compared} sampled values equal the source's "
                                f"({sample['sample_changed']} changed, {sample['sample_gone']} gone since the backup)")
        expected = (f"the RDB's keys restored, and ≥ {self.cfg.min_sample_match:.0%} of {self.cfg.sample} sampled "
                    "values equal to the source's")
        if problems:
            return Outcome(False, "; ".join(problems), expected, evidence)
        return Outcome(True, "; ".join(self.verified), expected, evidence)

    def _sample(self, restored: redis.Redis, counts: dict[int, int]) -> dict[str, Any]:
        """Compare up to ``sample`` keys (spread over the databases) with the live source, by their DUMP."""
        equal = changed = gone = 0
        examples: list[str] = []
        total = sum(counts.values())
        for db, n in sorted(counts.items()):
            quota = max(1, round(self.cfg.sample * n / total)) if total and self.cfg.sample else 0
            if quota == 0:
                continue
            restored.execute_command("SELECT", db)  # type: ignore[no-untyped-call]
            keys: list[bytes] = []
            cursor = 0
            while len(keys) < quota:
                cursor, batch = restored.scan(cursor=cursor, count=max(quota, 100))
                keys += [k if isinstance(k, bytes) else k.encode() for k in batch]
                if cursor == 0:
                    break
            keys = keys[:quota]
            options = {**parse_url(self.source.url), "db": db}  # type: ignore[no-untyped-call]  # the URL's own /N would win over a db= argument
            with redis.Redis(**options, socket_timeout=self.source.timeout_s,
                             socket_connect_timeout=self.source.timeout_s, retry=Retry(NoBackoff(), 0)) as src:
                theirs = src.pipeline(transaction=False)
                for key in keys:
                    theirs.dump(key)
                source_values = theirs.execute()
            ours = restored.pipeline(transaction=False)
            for key in keys:
                ours.dump(key)
            for key, mine, other in zip(keys, ours.execute(), source_values, strict=True):
                if other is None:
                    gone += 1
                elif mine == other:
                    equal += 1
                else:
                    changed += 1
                    if len(examples) < 5:
                        examples.append(f"db{db}:{key.decode(errors='replace')}")
        return {"sample_compared": equal + changed + gone, "sample_equal": equal, "sample_changed": changed,
                "sample_gone": gone, "sample_changed_examples": examples}
