"""Post-maintenance checklist, step 2: compared with the baseline captured before the window
(`opsproof baseline capture --label pre-maint`, then `pytest checks/post_maintenance --baseline pre-maint`)."""

from opsproof.baseline import Change


def test_no_check_flipped_since_the_baseline(maintenance_diff: list[Change]) -> None:
    """"Verify all services are back" — every check that passed before the window still passes."""
    flipped = [c.explain() for c in maintenance_diff if c.kind == "flipped"]
    assert not flipped, "flipped since the baseline:\n  " + "\n  ".join(flipped)


def test_values_within_tolerance_of_the_baseline(maintenance_diff: list[Change]) -> None:
    """"Error rates and latency not above baseline; no data lost" — error ratio, p95, Redis memory, replication
    lag and row counts within their tolerance of the values before the window; a value missing on either side is
    a finding (no data), and a comparison of nothing fails."""
    compared = [c for c in maintenance_diff if c.kind in ("moved", "within", "no-data")]
    assert compared, "no value was compared with the baseline: nothing measured is not a pass"
    findings = []
    for kind, heading in (("moved", "moved beyond tolerance since the baseline:"),
                          ("no-data", "no value on one side, nothing to compare:")):
        if found := [c.explain() for c in compared if c.kind == kind]:
            findings += [heading, *(f"  {line}" for line in found)]
    assert not findings, "\n".join(findings)
