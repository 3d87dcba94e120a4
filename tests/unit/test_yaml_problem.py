"""One message for a YAML document that does not parse, in the inventory, the waivers and the experiment files."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsproof.chaos.experiment_file import ExperimentError
from opsproof.chaos.experiment_file import load as load_experiment
from opsproof.governance.waivers import WaiverError, loads_waivers
from opsproof.inventory import InventoryError, loads


def test_an_impossible_date_in_a_yaml_experiment_is_a_yaml_error_not_json(tmp_path: Path) -> None:
    """It read "not valid JSON" (the JSON branch caught PyYAML's ValueError)."""
    path = tmp_path / "x.yaml"
    path.write_text("title: t\nwhen: 2001-02-30\n")
    with pytest.raises(ExperimentError, match=r"x\.yaml:1: not valid YAML: ValueError\. Fix: write a YAML mapping\.$"):
        load_experiment(path)


@pytest.mark.parametrize(("text", "tail"), [
    ("a: [\n", r":2: not valid YAML: .+\. Fix: check indentation and quoting on that line\.$"),
    ("a: !!bool maybe\n", r":1: not valid YAML: KeyError\. Fix: write a YAML (mapping|list)\.$"),
    ("[" * 2000, r":1: not valid YAML: nesting too deep\. Fix: flatten the file\.$"),
])
def test_the_three_loaders_say_it_alike(tmp_path: Path, text: str, tail: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    for load, error in ((lambda: loads(text, "x.yaml"), InventoryError),
                        (lambda: loads_waivers(text, "x.yaml"), WaiverError),
                        (lambda: load_experiment(path), ExperimentError)):
        with pytest.raises(error, match=r"x\.yaml" + tail):
            load()
