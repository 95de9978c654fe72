"""What a call payload means by the format's rules, read apart from the parsers.

The generator checks its plan against this reading and the invariant finds call blocks with it,
so both agree on one definition of "a call": strict JSON within `MAX_JSON_DEPTH`, with a
faithful rendering.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from interns1_plugin import formats as f
from interns1_plugin.parsers.call_formats import MAX_JSON_DEPTH


def decoded_call(payload: str) -> tuple[str, Any] | None:
    """What a call payload means by the format's rules, read with the stdlib's strict JSON.

    Written apart from the parsers on purpose: `parameters` wins over `arguments`, null or
    missing arguments are `{}`, arguments given as a JSON string are read once more (and their
    depth measured alone), and a call must have a faithful rendering: nesting within
    `MAX_JSON_DEPTH`, no infinite number, no lone surrogate in its name or arguments.
    """
    obj = strict_json(payload)
    if not isinstance(obj, dict):
        return None
    name = obj.get("name")
    if not isinstance(name, str) or not name or _SURROGATE.search(name):
        return None
    args = next((obj[key] for key in f.ARGUMENT_KEYS if key in obj), None)
    if args is None:
        args = {}
    if isinstance(args, str):
        args = strict_json(args)
    if not isinstance(args, dict) or not representable(args):
        return None
    return name, args


class _NotJson:
    """What `strict_json` returns for text that is not a call's JSON (None is JSON's null)."""


_NOT_JSON = _NotJson()
#: The characters a scan for nesting must look at: brackets, and what opens, escapes or closes
#: a string literal (brackets inside one do not nest).
_JSON_STRUCTURE = re.compile(r'[\[\]{}"\\]')
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def strict_json(text: str) -> object:
    """The value of `text` as strict JSON within `MAX_JSON_DEPTH`, else `_NOT_JSON`.

    Depth is measured before decoding: the decoder recurses once per level, so decoding first
    would make the verdict on deep text depend on the checker's own stack depth.
    """
    if nesting(text) > MAX_JSON_DEPTH:
        return _NOT_JSON
    try:
        return json.loads(text, parse_constant=reject_constant)
    except ValueError:
        return _NOT_JSON
    except RecursionError as exc:  # within the bound: the checker's own stack is too deep
        raise RuntimeError("the checker cannot decode JSON within MAX_JSON_DEPTH here") from exc


def nesting(text: str) -> int:
    """The deepest bracket nesting of JSON `text`, brackets inside string literals not counted.

    For text that is not JSON the number is only an upper bound on how deep a decoder gets
    before it fails, which is all the verdict needs.
    """
    depth = deepest = 0
    in_string = False
    skip = -1  # the position of a character escaped by a backslash
    for match in _JSON_STRUCTURE.finditer(text):
        pos, ch = match.start(), match.group()
        if pos == skip:
            continue
        if in_string:
            if ch == "\\":
                skip = pos + 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def representable(value: object) -> bool:
    """Whether a decoded value renders as JSON faithfully: finite numbers, UTF-8-encodable text.

    Walks with its own stack, not recursion, for the same reason `strict_json` measures first.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, str) and _SURROGATE.search(item):
            return False
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def reject_constant(name: str) -> None:
    raise ValueError(f"not JSON: {name}")
