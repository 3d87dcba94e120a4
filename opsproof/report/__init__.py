"""Readiness reports: every suite's records, collected, judged against a readiness policy and rendered.

The report side only reads: it never contacts a target. Records (:mod:`.records`) → collect (:mod:`.collect`) →
judge (:mod:`.judge`) → render (:mod:`.render`).
"""

from opsproof.report.records import SCHEMA, CheckRecord, RecordError, Verdict, parse, read_jsonl

__all__ = ["SCHEMA", "CheckRecord", "RecordError", "Verdict", "parse", "read_jsonl"]
