"""The inventory's ``backups.<name>.supabase`` (Supabase's managed backups), validated with file, line and key."""

from __future__ import annotations

import re

import pytest

from opsproof.inventory import InventoryError, address_of, loads


def entry(supabase: str, extra: str = "") -> str:
    return f"environment: t\nbackups:\n  managed:\n{extra}    supabase: {supabase}\n"


def test_a_supabase_entry_alone_is_a_backups_entry_and_hides_its_token() -> None:
    cfg = loads(entry("{project_ref: pikywaoqlekupfynnclg, access_token: 'sbp_literal-t0ken', pitr_rpo: 5m}",
                      "    max_age: 24h\n")).backups["managed"]
    assert cfg.supabase is not None
    assert (cfg.supabase.pitr_rpo, cfg.supabase.checks_pitr, cfg.supabase.failures_within) == (300, True, 7 * 86400)
    assert cfg.supabase.where == "https://api.supabase.com/v1/projects/pikywaoqlekupfynnclg/database/backups"
    assert address_of(cfg) == "Supabase project pikywaoqlekupfynnclg at https://api.supabase.com"
    assert "sbp_literal-t0ken" not in repr(cfg) + str(cfg)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (entry("{project_ref: Not-A-Ref, access_token: t}"), "backups.managed.supabase.project_ref: String should "
                                                             "match pattern"),
        (entry("{project_ref: pikywaoqlekupfynnclg}"), "backups.managed.supabase.access_token: "),
        ("environment: t\npostgres:\n  db: {dsn: 'postgresql://u@h/d'}\nbackups:\n  managed:\n    postgres: db\n"
         "    supabase: {project_ref: pikywaoqlekupfynnclg, access_token: t}\n",
         "backups.managed: supabase: without a directory: a DR drill restores from a directory"),
    ],
    ids=["bad-ref", "no-token", "drill-without-directory"],
)
def test_supabase_is_validated_with_file_and_key(text: str, message: str) -> None:
    with pytest.raises(InventoryError, match=re.escape(message)):
        loads(text, "inv.yaml")
