"""The `time_series` chat content part: what it accepts, what it refuses, how it is installed.

The served path (a real `vllm serve` with time-series requests) is in
`tests/server/test_interns1_pro_server.py`; these tests pin the pieces without a server.
"""

from __future__ import annotations

import pytest

pytest.importorskip("vllm")

from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest  # noqa: E402
from vllm.exceptions import VLLMValidationError  # noqa: E402
from vllm.renderers import chat_utils  # noqa: E402

from interns1_plugin.vllm import time_series_part  # noqa: E402

pytestmark = pytest.mark.vllm


def test_install_is_idempotent_and_wraps_vllms_parser():
    assert time_series_part.install()
    parse = chat_utils._parse_chat_message_content_part
    assert time_series_part.install()
    assert chat_utils._parse_chat_message_content_part is parse
    assert chat_utils.MODALITY_PLACEHOLDERS_MAP["time_series"] == "<##TIME_SERIES##>"


def test_disable_switch(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(time_series_part.DISABLE_ENV, "1")
    assert time_series_part.install() is False


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"values": [1, 2, 3]}, {"values": [1, 2, 3]}),
        ({"values": [1, 2], "sampling_rate": 4.0}, {"values": [1, 2], "sampling_rate": 4.0}),
        ({"url": "data:text/csv;base64,MQ=="}, {"values": "data:text/csv;base64,MQ=="}),
    ],
)
def test_payload_of_accepted_parts(body, expected):
    assert time_series_part.payload_of({"type": "time_series", "time_series": body}) == expected


@pytest.mark.parametrize(
    "body",
    [
        None,
        [1, 2, 3],
        {},
        {"values": [1], "url": "data:,"},
        {"url": "https://example.com/series.npy"},
        {"values": [1], "rate": 3},
    ],
)
def test_payload_of_refused_parts(body):
    with pytest.raises(VLLMValidationError):
        time_series_part.payload_of({"type": "time_series", "time_series": body})


def test_one_part_messages_keep_the_time_series_part():
    """The request schema validates one-part contents lazily and refuses unknown part types."""
    part = {"type": "time_series", "time_series": {"url": "data:application/x-npy;base64,AA"}}
    request = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": [part]}])
    assert time_series_part._with_time_series_parts(request.messages[0]["content"]) == [part]


def test_other_refused_parts_still_raise():
    request = ChatCompletionRequest(
        model="m", messages=[{"role": "user", "content": [{"type": "bogus"}]}]
    )
    with pytest.raises(Exception, match="validation error"):
        time_series_part._with_time_series_parts(request.messages[0]["content"])
