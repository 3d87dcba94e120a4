"""Reading an experiment file (YAML, or JSON by its suffix) as the inventory is read: a regular file of at most
4 MiB, a duplicate key an error naming both lines, and one message naming file, line and fix for anything else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsproof.util.documents import DuplicateKeyError, parse_json, parse_yaml, yaml_problem
from opsproof.util.files import read_text


class ExperimentError(ValueError):
    """A broken experiment file: the message names file, line and fix."""


def load(path: Path) -> dict[str, Any]:
    text = read_text(path, "experiment", ExperimentError)
    if path.suffix == ".json":
        try:
            data = parse_json(text)
        except DuplicateKeyError as e:
            raise ExperimentError(e.message(str(path))) from None
        except ValueError as e:  # json.JSONDecodeError
            raise ExperimentError(f"{path}:{getattr(e, 'lineno', 1)}: not valid JSON: {getattr(e, 'msg', e)}. "
                                  "Fix: check that line.") from None
        except RecursionError:
            raise ExperimentError(f"{path}:1: nesting too deep. Fix: flatten the file.") from None
    else:
        try:
            data = parse_yaml(text)[1]
        except Exception as e:
            raise ExperimentError(yaml_problem(e, str(path), "a YAML mapping")) from None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ExperimentError(f"{path}:1: (top level): expected a mapping (title, description, method, …), got {got}. "
                              "Fix: start from one of chaos/experiments/*.yaml.")
    return data
