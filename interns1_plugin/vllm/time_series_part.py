"""The `time_series` content part of vLLM's OpenAI chat API, for Intern-S1-Pro.

A message part carries one series::

    {"type": "time_series",
     "time_series": {"values": [0.1, 0.4, ...],          # one channel, or [[c1, c2], ...] rows
                     "sampling_rate": 100.0}}            # optional, in Hz
    {"type": "time_series",
     "time_series": {"url": "data:application/x-npy;base64,...",  # or data:text/csv;base64,...
                     "sampling_rate": 100.0}}

Values are decoded, bounded and validated by `interns1_plugin.processing.time_series` inside the
model's processor, so every error (NaN, ragged rows, over the point limit, ...) comes back as a
400 with its message. Only data URLs are accepted: a series is data, not a resource to fetch.

Why this module exists: vLLM 0.32's chat parser knows a fixed list of part types and drops
modalities it does not know when it collects a request's media; it has no extension point for
either. `install()` therefore wraps three functions of `vllm.renderers.chat_utils` in the process
that parses requests: parts of type `time_series` become items of the `time_series` modality
(also when the request schema refused them as unknown OpenAI parts, which it does lazily for
one-part messages),
which the model's processor registers with vLLM's data parser the documented way; every other
part goes to vLLM's own code unchanged. `INTERNS1_PLUGIN_DISABLE_TIME_SERIES_PART=1` leaves vLLM
untouched.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from interns1_plugin.env_flags import env_flag

#: The content part type and vLLM's modality name for it.
PART_TYPE = "time_series"
#: vLLM's generic placeholder for the modality when a template takes content as a string.
GENERIC_PLACEHOLDER = "<##TIME_SERIES##>"
DISABLE_ENV = "INTERNS1_PLUGIN_DISABLE_TIME_SERIES_PART"

_MARK = "_interns1_time_series_part"
_log = logging.getLogger("vllm.plugins.interns1")


def disabled() -> bool:
    return env_flag(DISABLE_ENV)


def payload_of(part: Mapping[str, Any]) -> dict[str, Any]:
    """The part's series as the processor's payload: `{"values": ..., "sampling_rate": ...}`."""
    from vllm.exceptions import VLLMValidationError

    body = part.get(PART_TYPE)
    if not isinstance(body, Mapping):
        raise VLLMValidationError(
            "a time_series part needs a 'time_series' object with 'values' or 'url'",
            parameter=PART_TYPE,
        )
    unknown = set(body) - {"values", "url", "sampling_rate"}
    if unknown or ("values" in body) == ("url" in body):
        raise VLLMValidationError(
            "a time_series object needs exactly one of 'values' (numbers or rows of numbers) "
            "and 'url' (a data:application/x-npy or data:text/csv base64 URL), and may have "
            f"'sampling_rate'; got keys {sorted(map(str, body))}",
            parameter=PART_TYPE,
        )
    if "url" in body and not (isinstance(body["url"], str) and body["url"].startswith("data:")):
        raise VLLMValidationError(
            "time_series.url must be a data: URL (data:application/x-npy;base64,... or "
            "data:text/csv;base64,...)",
            parameter=PART_TYPE,
        )
    payload = {"values": body["values"] if "values" in body else body["url"]}
    if body.get("sampling_rate") is not None:
        payload["sampling_rate"] = body["sampling_rate"]
    return payload


async def _ready(item: tuple[object, str | None]) -> tuple[object, str | None]:
    return item


def _add_item(chat_utils: Any, mm_parser: Any, item: tuple[object, str | None]) -> str | None:
    """Track the item like vLLM tracks images, for its sync and async parsers alike."""
    tracker = mm_parser._tracker
    if isinstance(mm_parser, chat_utils.AsyncMultiModalContentParser):
        placeholder = tracker.add(PART_TYPE, functools.partial(_ready, item))
    else:
        placeholder = tracker.add(PART_TYPE, item)
    mm_parser._add_placeholder(PART_TYPE, placeholder)
    return placeholder


def _wrap_parse(chat_utils: Any, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def parse_part(part: Any, mm_parser: Any, *, wrap_dicts: bool, interleave_strings: bool):
        if not (isinstance(part, Mapping) and part.get("type") == PART_TYPE):
            return original(
                part, mm_parser, wrap_dicts=wrap_dicts, interleave_strings=interleave_strings
            )
        uuid = part.get("uuid")
        _add_item(chat_utils, mm_parser, (payload_of(part), None if uuid is None else str(uuid)))
        if wrap_dicts:
            return {"type": PART_TYPE}
        return GENERIC_PLACEHOLDER if interleave_strings else None

    setattr(parse_part, _MARK, True)
    return parse_part


def _raw_part(error: Exception) -> Mapping[str, Any] | None:
    """The request's own dict when validation refused a `time_series` part, else None."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return None
    for detail in errors():
        value = detail.get("input")
        if isinstance(value, Mapping) and value.get("type") == PART_TYPE:
            return value
    return None


def _with_time_series_parts(parts: Iterable[Any]) -> list[Any]:
    """Materialise a message's parts, keeping `time_series` parts as the client sent them.

    A one-part message is validated lazily against OpenAI's content-part types, which do not
    include `time_series`: iterating raises a validation error whose input is the raw part.
    """
    out: list[Any] = []
    iterator = iter(parts)
    while True:
        try:
            out.append(next(iterator))
        except StopIteration:
            return out
        except Exception as error:
            raw = _raw_part(error)
            if raw is None:
                raise
            out.append(dict(raw))


def _wrap_parse_parts(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def parse_parts(role: str, parts: Any, *args: Any, **kwargs: Any):
        if not isinstance(parts, (list, tuple, str)):
            parts = _with_time_series_parts(parts)
        return original(role, parts, *args, **kwargs)

    setattr(parse_parts, _MARK, True)
    return parse_parts


def _wrap_resolve(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def resolve_items(items_by_modality: dict[str, list], *args: Any, **kwargs: Any):
        items = dict(items_by_modality)
        series = items.pop(PART_TYPE, None)
        mm_data, mm_uuids = original(items, *args, **kwargs)
        if series:
            mm_data[PART_TYPE] = [data for data, _uuid in series]
            mm_uuids[PART_TYPE] = [uuid for _data, uuid in series]
        return mm_data, mm_uuids

    setattr(resolve_items, _MARK, True)
    return resolve_items


def install() -> bool:
    """Teach vLLM's chat parser the `time_series` part; idempotent. False when switched off."""
    if disabled():
        return False
    from vllm.renderers import chat_utils

    if getattr(chat_utils._parse_chat_message_content_part, _MARK, False):
        return True
    chat_utils.MODALITY_PLACEHOLDERS_MAP.setdefault(PART_TYPE, GENERIC_PLACEHOLDER)
    chat_utils._parse_chat_message_content_part = _wrap_parse(
        chat_utils, chat_utils._parse_chat_message_content_part
    )
    chat_utils._parse_chat_message_content_parts = _wrap_parse_parts(
        chat_utils._parse_chat_message_content_parts
    )
    chat_utils._resolve_items = _wrap_resolve(chat_utils._resolve_items)
    _log.debug("interns1-plugin: chat requests may carry time_series parts")
    return True


__all__ = ["DISABLE_ENV", "GENERIC_PLACEHOLDER", "PART_TYPE", "install", "payload_of"]
