"""Intern-S1-Pro time-series inputs: decode, validate, normalise and count tokens.

Engine-agnostic (NumPy and torch only), so vLLM's and LMDeploy's processors share one definition
of what a request may carry and of how many `<|ts_token|>` placeholders a series costs.

Differences from LMDeploy 0.18's reference preprocessing, all deliberate:

- Nothing is truncated. The reference silently cuts series at 240,000 points; here a series
  longer than `max_points` (default 1,000,000 per channel) is rejected with an error naming the
  bound, so the model never sees less than the caller sent.
- A sampling rate that is given must be a positive finite number (the reference quietly replaces
  zero or negative rates by the default). Missing means the default, `max(length / 4, 1)`.
- The patch stride is computed in float32 with torch, exactly as the encoder computes it (in the
  reference and in the training code). The reference's token count uses float64 instead, and the
  two disagree for sampling rates of about 1664 to 3673 (float32 rounds `1 + exp(-sr/100)` to 1
  sooner), so its prompt and its encoder can disagree on the count there. Here the encoder calls
  `stride_and_patch` too, so they agree by construction.
- Series too short to yield a single token are rejected (the reference asserts in the encoder).
- Constant channels normalise to exactly 0 instead of to rounding noise divided by 1e-8.
"""

from __future__ import annotations

import binascii
import io
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from interns1_plugin import formats

try:  # SIMD base64, ~40x faster on large payloads; the standard library otherwise
    from pybase64 import b64decode
except ImportError:
    from base64 import b64decode

#: Points per channel accepted by default (the model card's upper bound).
DEFAULT_MAX_POINTS = 1_000_000
#: Channels accepted by default.
DEFAULT_MAX_CHANNELS = 64
#: Largest data URL (characters) decoded by default: 10^6 float64 points x 12 channels fit.
DEFAULT_MAX_PAYLOAD_BYTES = 128 * 2**20
#: Added to each channel's standard deviation, as in the reference.
NORM_EPS = 1e-8

NPY_DATA_URL = "data:application/x-npy;base64,"
CSV_DATA_URL = "data:text/csv;base64,"
_PAYLOAD_KEYS = frozenset({"values", "sampling_rate"})


class TimeSeriesInputError(ValueError):
    """A time-series payload the server refuses; the message says what to change."""


@dataclass(frozen=True)
class TimeSeriesInput:
    """One preprocessed series, ready for the encoder.

    `values` is float32 `(length, channels)`, z-normalised per channel; `num_tokens` is the number
    of `<|ts_token|>` placeholders the prompt needs and the encoder will produce.
    """

    values: torch.Tensor
    sampling_rate: float
    length: int
    num_tokens: int

    @property
    def num_channels(self) -> int:
        return int(self.values.shape[1])


# --- the token count ---------------------------------------------------------------------------


def default_sampling_rate(length: int) -> float:
    """The rate assumed when a request gives none: `max(length / 4, 1)`, as in training."""
    return max(length / 4, 1.0)


def check_sampling_rate(sampling_rate: Any) -> float:
    """`sampling_rate` as a float, or TimeSeriesInputError unless it is a positive finite number."""
    if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, numbers.Real):
        raise TimeSeriesInputError(
            f"sampling_rate must be a number, got {type(sampling_rate).__name__}"
        )
    value = float(sampling_rate)
    if not math.isfinite(value) or value <= 0:
        raise TimeSeriesInputError(
            f"sampling_rate must be a positive finite number, got {sampling_rate!r} "
            "(leave it out to use the default, max(length / 4, 1))"
        )
    return value


@lru_cache(maxsize=4096)
def _stride_and_patch(sampling_rate: float) -> tuple[int, int]:
    rate = torch.tensor(sampling_rate, dtype=torch.float32)
    stride = int(torch.floor(160 / (1 + torch.exp(-rate / 100)) ** 6).item())
    return stride, 2 * stride


def stride_and_patch(sampling_rate: float) -> tuple[int, int]:
    """Patch stride and size (`2 * stride`) the encoder uses at `sampling_rate`.

    `stride = floor(160 / (1 + exp(-sr / 100)) ** 6)`, evaluated in float32 like the encoder;
    it lies in [2, 160].
    """
    return _stride_and_patch(check_sampling_rate(sampling_rate))


def num_patches(length: int, stride: int, patch: int) -> int:
    """`ceil((length - patch) / stride) + 1` in exact integer arithmetic (may be 0)."""
    return -((patch - length) // stride) + 1


def tokens_from_patches(patches: int) -> int:
    """Tokens left after pairing patches (`// 2`) and the encoder's stride-2 conv (`ceil(/2)`)."""
    return (patches // 2 + 1) // 2


def num_time_series_tokens(length: int, sampling_rate: float | None = None) -> int:
    """Placeholder count for a series of `length` points (0 when it is too short for one)."""
    if length < 1:
        raise TimeSeriesInputError(f"a time series needs at least one point, got {length}")
    rate = default_sampling_rate(length) if sampling_rate is None else sampling_rate
    stride, patch = stride_and_patch(rate)
    return tokens_from_patches(num_patches(length, stride, patch))


def min_time_series_length(sampling_rate: float | None = None) -> int:
    """The fewest points that yield one token (with the default rate when none is given)."""
    if sampling_rate is not None:
        return stride_and_patch(sampling_rate)[1] + 1
    length = 1
    while num_time_series_tokens(length) == 0:
        length += 1
    return length


# --- decoding ----------------------------------------------------------------------------------


def _decode_data_url(payload: str, max_payload_bytes: int) -> np.ndarray:
    if len(payload) > max_payload_bytes:
        raise TimeSeriesInputError(
            f"time-series payload is {len(payload)} bytes, over the {max_payload_bytes}-byte "
            "limit; raise max_payload_bytes to accept it"
        )
    for prefix, reader in ((NPY_DATA_URL, _read_npy), (CSV_DATA_URL, _read_csv)):
        if payload.startswith(prefix):
            try:
                raw = b64decode(payload[len(prefix) :], validate=True)
            except (binascii.Error, ValueError) as error:
                message = f"time-series data URL is not valid base64: {error}"
                raise TimeSeriesInputError(message) from error
            return reader(raw)
    head = payload[:40] + ("..." if len(payload) > 40 else "")
    raise TimeSeriesInputError(
        f"unsupported time-series string {head!r}: expected a data URL starting with "
        f"{NPY_DATA_URL!r} or {CSV_DATA_URL!r}"
    )


def _read_npy(raw: bytes) -> np.ndarray:
    try:
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:  # malformed, truncated, object arrays
        message = f"time-series .npy payload cannot be read: {error}"
        raise TimeSeriesInputError(message) from error


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _read_csv(raw: bytes) -> np.ndarray:
    """Comma-separated numbers, one row per time step, with an optional header row."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TimeSeriesInputError(f"time-series CSV is not UTF-8 text: {error}") from error
    text = text.lstrip()
    if not text:
        raise TimeSeriesInputError("time-series CSV is empty")
    first_line = text.split("\n", 1)[0]
    header = not all(_is_number(field) for field in first_line.split(","))
    try:
        return np.loadtxt(
            io.StringIO(text),
            delimiter=",",
            skiprows=1 if header else 0,
            comments=None,
            dtype=np.float64,
            ndmin=2,
        )
    except ValueError as error:
        raise TimeSeriesInputError(
            f"time-series CSV must hold numbers only, the same count on every row: {error}"
        ) from error


def _as_array(values: Any, max_points: int, max_payload_bytes: int) -> np.ndarray:
    if isinstance(values, str):
        return _decode_data_url(values, max_payload_bytes)
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    if isinstance(values, np.ndarray):
        return values
    if isinstance(values, Sequence) and not isinstance(values, (bytes, bytearray)):
        if len(values) > max_points:  # before converting a huge list
            raise _too_long(len(values), max_points)
        try:
            return np.asarray(values)
        except ValueError as error:
            raise TimeSeriesInputError(
                f"time-series rows must all have the same number of channels: {error}"
            ) from error
    raise TimeSeriesInputError(
        f"unsupported time-series payload of type {type(values).__name__}: send a list of "
        "numbers, a list of rows, an array, or a .npy / CSV data URL"
    )


def _too_long(length: int, max_points: int) -> TimeSeriesInputError:
    return TimeSeriesInputError(
        f"time series has {length} points per channel, over the limit of max_points="
        f"{max_points}; it is not truncated: raise max_points to accept it, or send fewer points"
    )


def _check_shape(array: np.ndarray, max_points: int, max_channels: int) -> np.ndarray:
    if array.dtype.kind not in "iuf":
        raise TimeSeriesInputError(
            f"time-series values must be real numbers, got dtype {array.dtype}"
        )
    if array.ndim == 3:
        if array.shape[0] != 1:
            raise TimeSeriesInputError(
                f"a 3-D time-series array must hold one series (1, T, C), got {array.shape}; "
                "send each series separately"
            )
        array = array[0]
    if array.ndim == 0 or array.ndim > 3:
        raise TimeSeriesInputError(
            f"time-series values must be 1-D (T,), 2-D (T, C) or (1, T, C), got {array.ndim}-D"
        )
    if array.ndim == 1:
        array = array[:, None]
    length, channels = array.shape
    if length == 0:
        raise TimeSeriesInputError("time series is empty")
    if channels == 0:
        raise TimeSeriesInputError("time series has zero channels")
    if channels > max_channels:
        raise TimeSeriesInputError(
            f"time series has {channels} channels, over the limit of max_channels="
            f"{max_channels} (rows are time steps: send (T, C), not (C, T))"
        )
    if length > max_points:
        raise _too_long(length, max_points)
    return array


def decode_time_series(
    payload: Any,
    *,
    max_points: int = DEFAULT_MAX_POINTS,
    max_channels: int = DEFAULT_MAX_CHANNELS,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> tuple[np.ndarray, float | None]:
    """Decode a request payload into finite float64 values `(T, C)` and its sampling rate.

    Accepted: a list of numbers (one channel); a list of rows `[T][C]` (one row per time step,
    like CSV); a NumPy array or tensor `(T,)`, `(T, C)` or `(1, T, C)`; a data URL
    `data:application/x-npy;base64,...` or `data:text/csv;base64,...`; or a dict
    `{"values": <any of those>, "sampling_rate": <number>}`. The rate is None when not given.
    """
    sampling_rate = None
    if isinstance(payload, Mapping):
        unknown = set(payload) - _PAYLOAD_KEYS
        if unknown or "values" not in payload:
            raise TimeSeriesInputError(
                f"a time-series object needs 'values' and may have 'sampling_rate'; "
                f"got keys {sorted(map(str, payload))}"
            )
        if payload.get("sampling_rate") is not None:
            sampling_rate = check_sampling_rate(payload["sampling_rate"])
        payload = payload["values"]
    array = _check_shape(
        _as_array(payload, max_points, max_payload_bytes), max_points, max_channels
    )
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise TimeSeriesInputError("time-series values must be finite (no NaN or infinity)")
    return array, sampling_rate


# --- normalisation and the whole step ----------------------------------------------------------


def normalize(values: np.ndarray) -> np.ndarray:
    """Per-channel z-normalisation `(x - mean) / (std + 1e-8)` as float32 `(T, C)`.

    Statistics are taken in float64; a constant channel becomes exactly 0.
    """
    data = np.asarray(values, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    columns = np.ascontiguousarray(data.T)  # (C, T): reductions over contiguous rows are fast
    mean = columns.mean(axis=1)
    scale = 1.0 / (columns.std(axis=1) + NORM_EPS)
    out = np.empty(data.shape, dtype=np.float32)
    np.multiply(data - mean, scale, out=out, casting="same_kind")
    constant = columns.min(axis=1) == columns.max(axis=1)
    if constant.any():
        out[:, constant] = 0.0
    return out


def preprocess_time_series(
    payload: Any,
    sampling_rate: float | None = None,
    *,
    max_points: int = DEFAULT_MAX_POINTS,
    max_channels: int = DEFAULT_MAX_CHANNELS,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> TimeSeriesInput:
    """Decode, validate and normalise one series and count its tokens.

    `sampling_rate` may come from the argument or the payload's dict, not both with different
    values. Raises TimeSeriesInputError for anything the encoder cannot take whole.
    """
    values, payload_rate = decode_time_series(
        payload,
        max_points=max_points,
        max_channels=max_channels,
        max_payload_bytes=max_payload_bytes,
    )
    if sampling_rate is not None:
        sampling_rate = check_sampling_rate(sampling_rate)
        if payload_rate is not None and payload_rate != sampling_rate:
            raise TimeSeriesInputError(
                f"two sampling rates given ({sampling_rate} and {payload_rate} in the payload)"
            )
    rate = sampling_rate if sampling_rate is not None else payload_rate
    length = int(values.shape[0])
    if rate is None:
        rate = default_sampling_rate(length)
    num_tokens = num_time_series_tokens(length, rate)
    if num_tokens == 0:
        explicit = sampling_rate is not None or payload_rate is not None
        needed = min_time_series_length(rate if explicit else None)
        at = f"at sampling rate {rate:g}" if explicit else "with the default sampling rate"
        raise TimeSeriesInputError(
            f"time series of {length} points is too short to yield a token {at}; "
            f"it needs at least {needed} points"
        )
    return TimeSeriesInput(
        values=torch.from_numpy(normalize(values)),
        sampling_rate=rate,
        length=length,
        num_tokens=num_tokens,
    )


def time_series_placeholder(
    num_tokens: int,
    start: str = formats.TS_START,
    token: str = formats.TS_TOKEN,
    end: str = formats.TS_END,
) -> str:
    """The prompt text for one series: start, `num_tokens` tokens, end."""
    if num_tokens < 1:
        raise ValueError(f"a time-series placeholder needs at least one token, got {num_tokens}")
    return start + token * num_tokens + end


__all__ = [
    "CSV_DATA_URL",
    "DEFAULT_MAX_CHANNELS",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DEFAULT_MAX_POINTS",
    "NPY_DATA_URL",
    "TimeSeriesInput",
    "TimeSeriesInputError",
    "check_sampling_rate",
    "decode_time_series",
    "default_sampling_rate",
    "min_time_series_length",
    "normalize",
    "num_patches",
    "num_time_series_tokens",
    "preprocess_time_series",
    "stride_and_patch",
    "time_series_placeholder",
    "tokens_from_patches",
]
