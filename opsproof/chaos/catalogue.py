"""The actions, probes and controls of the opsproof chaos extension, read from its own modules, and the check of
every python provider of an experiment against them — without importing any other module.

Chaos Toolkit's own validation imports each provider's module to look its function up: ``module: this`` printed
the Zen of Python during a validation that "injects nothing", and ``module: os, func: system`` passed. Here a
module outside the extension is refused unless the user names it (``--allow-module``), a function must be one of
the module's activities, and each argument must fit its parameter's annotation (strictly: ``"30"`` is not a
float) and, being a number, must not be negative — every number an opsproof activity takes is a duration, a
count, a ratio or a ceiling.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from collections.abc import Collection, Iterator
from typing import Any

from pydantic import TypeAdapter, ValidationError

PACKAGE = "opsproof.chaos"
_MAX_DEPTH = 50


def _activities(module: Any) -> dict[str, inspect.Signature]:
    """Functions Chaos Toolkit can call: defined in the module, public, and taking ``configuration`` by keyword
    with a default (Chaos Toolkit passes it) — or a control hook (``*_control``)."""
    found = {}
    for name, fn in inspect.getmembers(module, inspect.isfunction):
        if fn.__module__ != module.__name__ or name.startswith("_"):
            continue
        sig = inspect.signature(fn, eval_str=True)
        config = sig.parameters.get("configuration")
        if name.endswith("_control") or (config is not None and config.default is not inspect.Parameter.empty):
            found[name] = sig
    return found


@functools.cache
def catalogue() -> dict[str, dict[str, inspect.Signature]]:
    """module → its activities (and control hooks), for every module of the extension that has any."""
    package = importlib.import_module(PACKAGE)
    modules = (importlib.import_module(f"{PACKAGE}.{m.name}") for m in pkgutil.iter_modules(package.__path__))
    return {m.__name__: acts for m in modules if (acts := _activities(m))}


def _allowed(module: str) -> dict[str, inspect.Signature]:
    """The functions of a module the user allowed (importing it is their choice); unresolvable annotations are
    left unchecked."""
    found = {}
    for name, fn in inspect.getmembers(importlib.import_module(module), callable):
        try:
            found[name] = inspect.signature(fn, eval_str=True)
        except (TypeError, ValueError, NameError):
            try:
                found[name] = inspect.signature(fn)
            except (TypeError, ValueError):
                continue
    return found


@functools.lru_cache(maxsize=256)
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _argument_problems(func: str, sig: inspect.Signature, arguments: dict[str, Any], ours: bool) -> Iterator[str]:
    for key, value in arguments.items():
        param = sig.parameters.get(key)
        if param is None or (isinstance(value, str) and "${" in value):  # unknown: Chaos Toolkit names it;
            continue  # a ${configuration} reference is only known at run time
        if param.annotation is not inspect.Parameter.empty:
            try:
                _adapter(param.annotation).validate_python(value, strict=True)
            except ValidationError as e:
                yield f"argument {key}={_shown(value)} does not fit {func}({param}): {e.errors()[0]['msg']}"
                continue
            except Exception:  # an annotation pydantic cannot check (a provider of the user's own)
                continue
        if ours and isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            yield f"argument {key}={value} is negative: {func}({param}) takes a duration, count or ratio ≥ 0"


def _python_providers(doc: Any, label: str = "", depth: int = 0) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, provider) of every python provider in an experiment: activities, tolerances, controls."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(doc, dict):
        provider = doc.get("provider")
        if isinstance(provider, dict) and provider.get("type") == "python":
            yield f"{label} {doc.get('name')!r}", provider
        for key, value in doc.items():
            section = {"steady-state-hypothesis": "steady-state", "controls": "control"}.get(key, key)
            yield from _python_providers(value, label or str(section), depth + 1)
    elif isinstance(doc, list):
        for item in doc:
            yield from _python_providers(item, label, depth + 1)


def provider_problems(experiment: dict[str, Any], allowed: Collection[str] = ()) -> list[str]:
    """Everything wrong with the experiment's python providers; when a module was refused, nothing was imported
    (and Chaos Toolkit's own validation, which imports them, must not run)."""
    known = catalogue()
    found = []
    for where, provider in _python_providers(experiment):
        module, func, arguments = provider.get("module"), provider.get("func"), provider.get("arguments", {})
        if not isinstance(module, str):
            found.append(f"{where}: module must be a module name, got {_shown(module)}")
            continue
        if module in allowed:
            functions = _allowed(module)
        elif module in known:
            functions = known[module]
        else:
            found.append(f"{where}: module {module!r} is not part of the opsproof chaos extension, so it was not "
                         f"imported. Fix: use one of {', '.join(known)}, or pass --allow-module {module} for a "
                         "provider you trust (it is then imported)")
            continue
        if func is None or where.startswith("control "):  # a control names only its module
            continue
        if func not in functions:
            if module in known:
                found.append(f"{where}: {module} has no action or probe {func!r} (it has {', '.join(functions)})")
            continue  # Chaos Toolkit names an unknown function of an allowed module
        if not isinstance(arguments, dict):
            found.append(f"{where}: arguments must be a mapping of name: value, got {_shown(arguments)}")
            continue
        found += [f"{where}: {problem}" for problem in _argument_problems(func, functions[func], arguments,
                                                                              module in known)]
    return found
