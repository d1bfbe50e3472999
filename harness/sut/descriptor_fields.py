"""The external-SUT descriptor's building blocks: its error, typed key readers, templates.

Every reader takes the mapping, the key and the dotted path to it, and
raises ``DescriptorError`` naming ``path + key``. ``fill`` fills a template
string's ``str.format`` placeholders (``PLACEHOLDERS``); ``sample_context``
gives sample values, so a template can be tried when the descriptor loads.
``descriptor`` assembles these into a ``Descriptor``.
"""

from __future__ import annotations

import shlex
import string
from collections.abc import Mapping
from typing import Any

PLACEHOLDERS = ("run_dir", "python", "offset", "seed", "descriptor_dir", "port", "ports")


class DescriptorError(ValueError):
    """A descriptor key is missing, of the wrong type, or out of range."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(f"descriptor error: {key}: {problem}")


# ------------------------------------------------------------------ readers


def _type_name(value: Any) -> str:
    return type(value).__name__


def _get(d: Mapping, key: str, path: str, kinds: tuple[type, ...], default: Any = ...) -> Any:
    if key not in d or d[key] is None:
        if default is ...:
            raise DescriptorError(path + key, "missing")
        return default
    value = d[key]
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise DescriptorError(path + key, f"must be {names} (got {value!r})")
    return value


def _mapping(d: Mapping, key: str, path: str, required: bool = False) -> dict:
    value = _get(d, key, path, (dict,), ... if required else {})
    return dict(value)


def _no_unknown(d: Mapping, allowed: tuple[str, ...], path: str) -> None:
    for key in d:
        if key not in allowed:
            raise DescriptorError(f"{path}{key}", f"unknown key (allowed: {', '.join(allowed)})")


def _positive(d: Mapping, key: str, path: str, default: float) -> float:
    value = float(_get(d, key, path, (int, float), default))
    if value <= 0:
        raise DescriptorError(path + key, f"must be > 0 (got {value})")
    return value


def _port_number(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise DescriptorError(key, f"port must be an integer in 1..65535 (got {value!r})")
    return value


def _port_ref(value: Any, key: str, names: Mapping[str, int], where: str) -> int:
    if isinstance(value, str):
        if value not in names:
            raise DescriptorError(key, f"must be a port number or the name of {where} "
                                       f"(got {value!r}; known: {', '.join(names) or 'none'})")
        return names[value]
    return _port_number(value, key)


def _command(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise DescriptorError(key, f"cannot split the command: {exc}") from None
    elif isinstance(value, list) and all(isinstance(a, (str, int, float)) for a in value):
        argv = [str(a) for a in value]
    else:
        raise DescriptorError(key, "must be a command: a string or a list of strings "
                                   f"(got {value!r})")
    if not argv:
        raise DescriptorError(key, "empty command")
    return tuple(argv)


def _env(d: Mapping, key: str, path: str) -> dict[str, str]:
    raw = _mapping(d, key, path)
    out = {}
    for k, v in raw.items():
        if not isinstance(v, (str, int, float)) or isinstance(v, bool):
            raise DescriptorError(f"{path}{key}.{k}", f"must be a string (got {v!r})")
        out[str(k)] = str(v)
    return out


# ------------------------------------------------------------------ templates


class _UnknownPlaceholder(Exception):
    pass


class _Sample(dict):
    def __missing__(self, key: str) -> Any:
        raise _UnknownPlaceholder(key)


def fill(template: str, context: Mapping[str, Any], key: str = "") -> str:
    """``template`` with its placeholders filled; ``DescriptorError`` naming ``key``."""
    try:
        return string.Formatter().vformat(template, (), context)
    except _UnknownPlaceholder as exc:
        raise DescriptorError(key, f"unknown placeholder {{{exc.args[0]}}} in {template!r} "
                                   f"(known: {', '.join(PLACEHOLDERS)})") from None
    except (KeyError, IndexError, AttributeError, TypeError) as exc:
        raise DescriptorError(key, f"no such port in a placeholder: {exc}") from None
    except ValueError as exc:
        raise DescriptorError(key, f"bad placeholder syntax in {template!r}: {exc} "
                                   "(write {{ and }} for literal braces)") from None


def sample_context(ports: Mapping[str, int], own: Mapping[str, int] | None = None) -> _Sample:
    names = dict(ports)
    if own:
        names.update(own)
    ctx = _Sample(run_dir="/run", python="python", offset=0, seed=0, descriptor_dir="/desc",
                  ports=names)
    if own:
        ctx["port"] = next(iter(own.values()))
    return ctx
