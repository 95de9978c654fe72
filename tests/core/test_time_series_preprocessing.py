"""Time-series preprocessing: what a request may carry, normalisation, and the token count."""

from __future__ import annotations

import base64
import io
import math
import time

import numpy as np
import pytest
import torch

from interns1_plugin import formats
from interns1_plugin.processing.time_series import (
    CSV_DATA_URL,
    DEFAULT_MAX_POINTS,
    NPY_DATA_URL,
    TimeSeriesInput,
    TimeSeriesInputError,
    decode_time_series,
    default_sampling_rate,
    min_time_series_length,
    normalize,
    num_time_series_tokens,
    preprocess_time_series,
    stride_and_patch,
    time_series_placeholder,
)

RATES = (None, 0.5, 1.0, 7.0, 20.0, 100.0, 259.78, 1000.0, 2500.0, 5000.0, 1e6)


def npy_url(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return NPY_DATA_URL + base64.b64encode(buffer.getvalue()).decode()


def csv_url(text: str) -> str:
    return CSV_DATA_URL + base64.b64encode(text.encode()).decode()


# --- the token count ---------------------------------------------------------------------------


def float32_stride(rate: float) -> int:
    """The stride as the encoder computes it: float32 torch ops on the rate."""
    sr = torch.tensor([rate], dtype=torch.float32)
    return int(torch.floor(160 / ((1 + torch.exp(-sr / 100)) ** 6))[0])


def float_tokens(lengths: np.ndarray, rate: float | None) -> np.ndarray:
    """LMDeploy's float arithmetic for the rest of the formula, vectorised over lengths."""
    lengths = lengths.astype(np.float64)
    if rate is None:
        rates = np.maximum(lengths / 4, 1.0)
        strides = np.array([float32_stride(r) for r in rates], dtype=np.float64)
    else:
        strides = np.full_like(lengths, float32_stride(rate))
    patch = 2 * strides
    embed = np.ceil((lengths - patch) / strides) + 1
    return ((embed // 2 + 1) // 2).astype(np.int64)


def test_default_sampling_rate() -> None:
    assert default_sampling_rate(1) == 1.0
    assert default_sampling_rate(4) == 1.0
    assert default_sampling_rate(10) == 2.5
    assert default_sampling_rate(1_000_000) == 250_000.0


@pytest.mark.parametrize("rate", [0.001, 0.5, 1.0, 20.0, 100.0, 500.0, 1e3, 5e3, 1e9])
def test_stride_matches_the_float32_formula(rate: float) -> None:
    stride, patch = stride_and_patch(rate)
    assert stride == float32_stride(rate)
    assert patch == 2 * stride
    assert 2 <= stride <= 160


def test_stride_agrees_with_float64_outside_the_documented_band() -> None:
    # float32 rounds 1 + exp(-sr/100) to 1 from about sr = 1664; float64 only from about 3673.
    rates = np.arange(0.25, 8000.0, 0.25)
    ours = np.array([stride_and_patch(float(r))[0] for r in rates])
    float64 = np.floor(160 / (1 + np.exp(-rates / 100)) ** 6).astype(int)
    differ = rates[ours != float64]
    band = (differ >= 1660) & (differ <= 3675)
    assert band.sum() > 0
    assert len(differ[~band]) < 20  # isolated rounding points near an integer only
    assert stride_and_patch(2500.0)[0] == 160 and float64[rates == 2500.0][0] == 159
    assert stride_and_patch(5000.0)[0] == 160


@pytest.mark.parametrize("rate", RATES)
def test_token_count_matches_float_reference_at_the_edges(rate: float | None) -> None:
    lengths = [1, 2, 3, 4, 5, 1_000, 10_000, 100_000, 1_000_000]
    if rate is not None:
        _, patch = stride_and_patch(rate)
        lengths += [patch - 1, patch, patch + 1, patch + 2]
    lengths = sorted(n for n in set(lengths) if n >= 1)
    expected = float_tokens(np.array(lengths), rate)
    got = [num_time_series_tokens(n, rate) for n in lengths]
    assert got == expected.tolist()


@pytest.mark.parametrize("rate", RATES)
def test_token_count_matches_float_reference_across_lengths(rate: float | None) -> None:
    rng = np.random.default_rng(7)
    lengths = np.unique(
        np.concatenate([np.arange(1, 3_000), rng.integers(1, 1_000_001, size=1_500)])
    )
    expected = float_tokens(lengths, rate)
    got = np.array([num_time_series_tokens(int(n), rate) for n in lengths])
    np.testing.assert_array_equal(got, expected)


def test_token_count_known_values() -> None:
    assert num_time_series_tokens(1_000_000) == 1562  # stride 160, 6249 patches
    assert num_time_series_tokens(240_000) == 375
    assert num_time_series_tokens(100, 20.0) == 6  # stride 4, 24 patches
    assert [num_time_series_tokens(n) for n in range(1, 8)] == [0, 0, 0, 0, 1, 1, 1]


def test_minimum_length() -> None:
    assert min_time_series_length() == 5
    for rate in (1.0, 20.0, 1000.0):
        shortest = min_time_series_length(rate)
        assert num_time_series_tokens(shortest, rate) == 1
        assert num_time_series_tokens(shortest - 1, rate) == 0
    assert all(num_time_series_tokens(n) >= 1 for n in range(5, 20_000))


def test_token_count_rejects_no_points() -> None:
    with pytest.raises(TimeSeriesInputError):
        num_time_series_tokens(0)


# --- decoding ----------------------------------------------------------------------------------


def test_flat_list_is_one_channel() -> None:
    values, rate = decode_time_series([1, 2.5, 3])
    assert values.shape == (3, 1) and values.dtype == np.float64
    assert rate is None


def test_list_of_rows_is_time_by_channel() -> None:
    values, _ = decode_time_series([[1, 10], [2, 20], [3, 30]])
    np.testing.assert_array_equal(values, [[1, 10], [2, 20], [3, 30]])


def test_dict_payload_carries_the_sampling_rate() -> None:
    values, rate = decode_time_series({"values": [1, 2, 3], "sampling_rate": 50})
    assert values.shape == (3, 1) and rate == 50.0
    _, rate = decode_time_series({"values": [1, 2, 3], "sampling_rate": None})
    assert rate is None


@pytest.mark.parametrize(
    "array, shape",
    [
        (np.arange(6, dtype=np.float32), (6, 1)),
        (np.arange(6, dtype=np.int16).reshape(3, 2), (3, 2)),
        (np.ones((1, 4, 3)), (4, 3)),
    ],
)
def test_arrays_and_tensors(array: np.ndarray, shape: tuple[int, int]) -> None:
    assert decode_time_series(array)[0].shape == shape
    assert decode_time_series(torch.from_numpy(array))[0].shape == shape
    assert decode_time_series(npy_url(array))[0].shape == shape


def test_npy_data_url_round_trips() -> None:
    array = np.random.default_rng(0).standard_normal((50, 3))
    np.testing.assert_array_equal(decode_time_series(npy_url(array))[0], array)


@pytest.mark.parametrize(
    "text",
    ["1,10\n2,20\n3,30\n", "time,value\n1,10\n2,20\n3,30", "a,b\r\n1,10\r\n2, 20\r\n3,30\r\n\n"],
)
def test_csv_data_url(text: str) -> None:
    values, _ = decode_time_series(csv_url(text))
    np.testing.assert_array_equal(values, [[1, 10], [2, 20], [3, 30]])


def test_csv_single_column() -> None:
    values, _ = decode_time_series(csv_url("value\n0.5\n-1e3\n"))
    np.testing.assert_array_equal(values, [[0.5], [-1000.0]])


def reject(payload: object, match: str, **limits: int) -> None:
    with pytest.raises(TimeSeriesInputError, match=match):
        decode_time_series(payload, **limits)


@pytest.mark.parametrize(
    "payload, match",
    [
        ([], "empty"),
        (np.zeros((0,)), "empty"),
        (np.zeros((0, 2)), "empty"),
        (np.zeros((5, 0)), "zero channels"),
        ([[1, 2], [3]], "same number of channels"),
        ([1, "a", 3], "real numbers"),
        (["1", "2"], "real numbers"),
        ([1, None], "real numbers"),
        ([True, False], "real numbers"),
        (np.array([1 + 2j]), "real numbers"),
        ([1.0, float("nan")], "finite"),
        ([1.0, float("inf")], "finite"),
        (np.full((3, 2), -np.inf), "finite"),
        (np.zeros((1, 2, 3, 4)), "4-D"),
        (np.zeros((2, 5, 1)), "one series"),
        (np.float64(3.0), "unsupported"),
        (np.array(3.0), "0-D"),
        (np.zeros((10, 65)), "65 channels"),
        (b"\x00\x01", "unsupported"),
        (3.5, "unsupported"),
        ("1,2,3", "unsupported time-series string"),
        ("data:image/png;base64,AAAA", "unsupported time-series string"),
        (NPY_DATA_URL + "!!not base64!!", "base64"),
        (NPY_DATA_URL + base64.b64encode(b"not an npy file").decode(), "cannot be read"),
        (npy_url(np.array(["a", "b"])), "real numbers"),
        (csv_url("1,2\n3\n"), "same count on every row"),
        (csv_url("1,2\n3,x\n"), "numbers only"),
        (csv_url("a,b\n1,\n"), "numbers only"),
        (csv_url("1\nnan\n"), "finite"),
        (csv_url("   \n"), "empty"),
        (CSV_DATA_URL + base64.b64encode(b"\xff\xfe1,2").decode(), "UTF-8"),
        ({"value": [1, 2]}, "needs 'values'"),
        ({"values": [1, 2], "rate": 3}, "needs 'values'"),
    ],
)
def test_rejections(payload: object, match: str) -> None:
    reject(payload, match)


def test_object_npy_is_not_unpickled() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    url = NPY_DATA_URL + base64.b64encode(buffer.getvalue()).decode()
    reject(url, "cannot be read")


@pytest.mark.parametrize("rate", [0, -1, -0.5, float("nan"), float("inf"), "10", True, [1.0]])
def test_bad_sampling_rates(rate: object) -> None:
    reject({"values": [1.0] * 10, "sampling_rate": rate}, "sampling_rate")
    with pytest.raises(TimeSeriesInputError, match="sampling_rate"):
        preprocess_time_series([1.0] * 10, sampling_rate=rate)  # type: ignore[arg-type]


def test_channel_bound_is_configurable() -> None:
    reject(np.zeros((10, 5)), "max_channels=4", max_channels=4)
    assert decode_time_series(np.zeros((10, 65)), max_channels=65)[0].shape == (10, 65)


def test_too_many_points_names_the_bound_and_is_configurable() -> None:
    over = DEFAULT_MAX_POINTS + 1
    for payload in (np.zeros(over, dtype=np.float32), [0.0] * over):
        with pytest.raises(TimeSeriesInputError) as info:
            decode_time_series(payload)
        message = str(info.value)
        assert f"max_points={DEFAULT_MAX_POINTS}" in message
        assert "raise max_points" in message and "not truncated" in message
    values, _ = decode_time_series(np.zeros(over, dtype=np.float32), max_points=over)
    assert values.shape == (over, 1)
    reject(np.zeros(11), "max_points=10", max_points=10)


def test_oversized_payload_is_refused_before_decoding() -> None:
    url = npy_url(np.zeros(1000))
    reject(url, "max_payload_bytes", max_payload_bytes=len(url) - 1)
    assert decode_time_series(url, max_payload_bytes=len(url))[0].shape == (1000, 1)


# --- normalisation and the whole step ----------------------------------------------------------


def test_normalize_matches_the_reference_formula() -> None:
    data = np.random.default_rng(1).normal(5.0, 3.0, size=(1000, 3))
    data[:, 2] *= 1e4
    out = normalize(data)
    expected = (data - data.mean(0)) / (data.std(0) + 1e-8)
    assert out.dtype == np.float32 and out.shape == (1000, 3)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(0), 1, atol=1e-5)


def test_normalize_constant_channels_are_zero() -> None:
    data = np.column_stack([np.full(1000, 0.1), np.full(1000, 1e6), np.arange(1000.0)])
    out = normalize(data)
    assert np.isfinite(out).all()
    assert (out[:, :2] == 0).all()
    assert normalize(np.array([3.0]))[0, 0] == 0.0


def test_preprocess_returns_normalised_float32_and_the_count() -> None:
    data = np.random.default_rng(2).standard_normal((5_000, 3)) * 4 + 2
    result = preprocess_time_series(data, sampling_rate=20.0)
    assert isinstance(result, TimeSeriesInput)
    assert result.values.dtype == torch.float32 and result.values.shape == (5_000, 3)
    assert result.length == 5_000 and result.num_channels == 3
    assert result.sampling_rate == 20.0
    assert result.num_tokens == num_time_series_tokens(5_000, 20.0)
    np.testing.assert_allclose(result.values.numpy(), normalize(data))


def test_preprocess_defaults_the_sampling_rate() -> None:
    result = preprocess_time_series(list(range(100)))
    assert result.sampling_rate == 25.0
    assert result.num_tokens == num_time_series_tokens(100)


def test_preprocess_takes_the_rate_from_either_place_but_not_two_different() -> None:
    payload = {"values": list(range(100)), "sampling_rate": 20}
    assert preprocess_time_series(payload).sampling_rate == 20.0
    assert preprocess_time_series(payload, sampling_rate=20.0).sampling_rate == 20.0
    with pytest.raises(TimeSeriesInputError, match="two sampling rates"):
        preprocess_time_series(payload, sampling_rate=30.0)


def test_too_short_series_are_rejected_with_the_minimum() -> None:
    with pytest.raises(TimeSeriesInputError, match="at least 5 points"):
        preprocess_time_series([1.0, 2.0, 3.0])
    _, patch = stride_and_patch(20.0)
    with pytest.raises(TimeSeriesInputError, match=f"at least {patch + 1} points"):
        preprocess_time_series([1.0] * patch, sampling_rate=20.0)
    assert preprocess_time_series([1.0] * (patch + 1), sampling_rate=20.0).num_tokens == 1


def test_a_million_points_are_kept_whole_and_fast() -> None:
    data = np.random.default_rng(3).standard_normal(1_000_000)
    url = npy_url(data)
    best = math.inf
    for _ in range(2):
        start = time.perf_counter()
        result = preprocess_time_series(url)
        best = min(best, time.perf_counter() - start)
    assert result.length == 1_000_000 and result.values.shape == (1_000_000, 1)
    assert result.num_tokens == 1562
    assert best < 1.0, f"preprocessing 10^6 points took {best:.2f}s"


# --- the placeholder ---------------------------------------------------------------------------


def test_placeholder_uses_the_pro_tokens() -> None:
    assert formats.TS_START == "<|ts_start|>"
    assert formats.TS_TOKEN == "<|ts_token|>"
    assert formats.TS_END == "<|ts_end|>"
    text = time_series_placeholder(3)
    assert text == "<|ts_start|>" + "<|ts_token|>" * 3 + "<|ts_end|>"
    assert time_series_placeholder(2, "<a>", "<t>", "<b>") == "<a><t><t><b>"
    with pytest.raises(ValueError):
        time_series_placeholder(0)
