"""The committed docs match what the code generates."""

import re
from io import StringIO
from pathlib import Path

from django.core.management import call_command

from orders.models import OrderType
from orders.models.machines import machine_states

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\| (\w+) \| `(\w+)` \|")


def test_order_docs_check_passes():
    out = StringIO()

    call_command("order_docs", "--check", stdout=out)  # raises CommandError when a file is stale

    assert out.getvalue().count("up to date") == 2


def test_status_mapping_doc_has_a_row_for_every_reachable_type_and_status():
    text = (ROOT / "docs" / "status-mapping.md").read_text(encoding="utf-8")

    rows = [m.groups() for line in text.splitlines() if (m := ROW.match(line))]

    assert sorted(rows) == sorted((t.value, s) for t in OrderType for s in machine_states(t))


def test_state_machines_doc_lists_the_actor_kinds_of_each_transition():
    text = (ROOT / "docs" / "state-machines.md").read_text(encoding="utf-8")

    assert "| `paid` | `accept` | `accepted` | Accept | `pos`, `staff`, `platform`, `system` |" in text
    assert "| `issued` | `redeem` | `redeemed` | Redeem | `pos`, `staff`, `system` |" in text
    assert text.count("```mermaid") == len(OrderType)


def test_env_example_lists_every_setting_read_in_settings():
    settings_source = (ROOT / "config" / "settings.py").read_text(encoding="utf-8")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")

    read = set(re.findall(r"env(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]*)\"", settings_source))
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))

    assert read, "no env reads found: has config/settings.py changed its style?"
    assert sorted(read - listed) == []
