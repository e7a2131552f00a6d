"""The committed docs match what the code generates."""

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from aftersales.management.commands.aftersales_docs import BEGIN, END, machine_transitions
from aftersales.models import AfterSalesRequest
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


def test_aftersales_docs_check_passes():
    out = StringIO()

    call_command("aftersales_docs", "--check", stdout=out)  # raises CommandError when the machine part is stale

    assert out.getvalue().strip().endswith("after-sales.md: up to date")


def test_after_sales_doc_has_a_row_with_the_actors_of_every_transition_and_a_diagram():
    text = (ROOT / "docs" / "after-sales.md").read_text(encoding="utf-8")
    declared = {(str(t.source), t.name, str(t.target))
                for t in AfterSalesRequest._meta.get_field("status").get_all_transitions(AfterSalesRequest)}

    rows = set(re.findall(r"^\| `(\w+)` \| `(\w+)` \| `(\w+)` \|", text, flags=re.MULTILINE))

    assert rows == declared
    assert len(machine_transitions()) == len(declared) == 13
    assert "| `requested` | `approve` | `approved` | Approve | `staff`, `pos`, `system` |" in text
    assert "| `awaiting_goods` | `receive_goods` | `refunding` | Goods received | `staff`, `pos` |" in text
    assert "    requested --> withdrawn: withdraw (customer, platform)" in text
    assert text.count("```mermaid") == 1


def test_after_sales_doc_gives_the_amounts_of_the_worked_examples():
    # tests/aftersales/test_amounts_examples.py asserts the same numbers on real orders
    text = (ROOT / "docs" / "after-sales.md").read_text(encoding="utf-8")

    for figure in ("**60.00**", "**22.13**", "**11.07**", "**11.06**", "**37.87**", "**32.87**", "**5.00**"):
        assert figure in text, figure


def test_aftersales_docs_rewrites_only_the_generated_part(tmp_path):
    stale = f"# Hand-written\n\nkept\n\n{BEGIN}\nold machine\n{END}\n\n## Also kept\n"
    (tmp_path / "after-sales.md").write_text(stale, encoding="utf-8")

    with pytest.raises(CommandError, match="out of date"):
        call_command("aftersales_docs", "--check", "--docs-dir", str(tmp_path), stdout=StringIO())
    call_command("aftersales_docs", "--docs-dir", str(tmp_path), stdout=StringIO())

    written = (tmp_path / "after-sales.md").read_text(encoding="utf-8")
    assert written.startswith(f"# Hand-written\n\nkept\n\n{BEGIN}\n")
    assert written.endswith(f"{END}\n\n## Also kept\n")
    assert "old machine" not in written
    assert "| `failed` | `settle` | `refunded` | Refunded after all | `payment`, `staff`, `system` |" in written


def test_aftersales_docs_refuses_a_file_without_its_markers(tmp_path):
    (tmp_path / "after-sales.md").write_text("# After-sales\n", encoding="utf-8")

    with pytest.raises(CommandError, match="has no generated part"):
        call_command("aftersales_docs", "--check", "--docs-dir", str(tmp_path), stdout=StringIO())


def test_env_example_lists_every_setting_read_in_settings():
    settings_source = (ROOT / "config" / "settings.py").read_text(encoding="utf-8")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")

    read = set(re.findall(r"env(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]*)\"", settings_source))
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))

    assert read, "no env reads found: has config/settings.py changed its style?"
    assert sorted(read - listed) == []
