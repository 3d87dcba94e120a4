"""Reading an experiment file (YAML, or JSON by its suffix) as the inventory is read: a regular file of at most
4 MiB, a duplicate key an error naming both lines, and one message naming file, line and fix for anything else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from opsproof.util.documents import DuplicateKeyError, parse_json, parse_yaml
from opsproof.util.files import read_text


class ExperimentError(ValueError):
    """A broken experiment file: the message names file, line and fix."""


def load(path: Path) -> dict[str, Any]:
    text = read_text(path, "experiment", ExperimentError)
    try:
        data = parse_json(text) if path.suffix == ".json" else parse_yaml(text)[1]
    except DuplicateKeyError as e:
        raise ExperimentError(e.message(str(path))) from None
    except ValueError as e:  # json.JSONDecodeError
        line = getattr(e, "lineno", 1)
        raise ExperimentError(f"{path}:{line}: not valid JSON: {getattr(e, 'msg', e)}. Fix: check that line.") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise ExperimentError(f"{path}:{mark.line + 1 if mark else 1}: not valid YAML: {e.problem or e.context}. "
                              "Fix: check indentation and quoting on that line.") from None
    except RecursionError:
        raise ExperimentError(f"{path}:1: nesting too deep. Fix: flatten the file.") from None
    except Exception as e:  # PyYAML raises more than YAMLError (see opsproof.inventory.loads)
        raise ExperimentError(f"{path}:1: not valid YAML ({type(e).__name__}). Fix: write a YAML mapping.") from None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ExperimentError(f"{path}:1: (top level): expected a mapping (title, description, method, …), got {got}. "
                              "Fix: start from one of chaos/experiments/*.yaml.")
    return data
