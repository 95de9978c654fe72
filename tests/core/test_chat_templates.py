"""The shipped chat templates, rendered the way the engines render them (no engine needed).

vLLM and LMDeploy both render chat templates through transformers, so the templates are checked
through transformers' own renderer: byte-for-byte against the worked examples of the spec, and
against the rules the examples do not cover.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jinja2
import jinja2.nodes
import pytest

from interns1_plugin import formats
from interns1_plugin.chat_templates import TEMPLATE_NAMES, read_template, template_path

chat_template_utils = pytest.importorskip(
    "transformers.utils.chat_template_utils",
    reason="transformers is needed to render chat templates the way the engines do",
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = Path(os.environ.get("INTERNS1_SPEC_DIR", REPO_ROOT.parent / "shared" / "spec"))
CASES_FILE = SPEC_DIR / "chat_template_cases.json"

S1 = "interns1"
PRO = "interns1_pro"

DEFAULT_SYSTEM = f"{formats.IM_START}system\n{formats.DEFAULT_SYSTEM_PROMPT}{formats.IM_END}\n"
GEN_ON = f"{formats.IM_START}assistant\n{formats.THINK_START}"
GEN_OFF = f"{formats.IM_START}assistant\n"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}

_UNSET = object()


def render(
    name: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    enable_thinking: Any = _UNSET,
    add_generation_prompt: bool = True,
) -> str:
    """Render through transformers; `_UNSET` leaves enable_thinking undefined, as engines do."""
    kwargs: dict[str, Any] = {}
    if enable_thinking is not _UNSET:
        kwargs["enable_thinking"] = enable_thinking
    rendered, _ = chat_template_utils.render_jinja_template(
        conversations=[messages],
        tools=tools,
        chat_template=read_template(name),
        add_generation_prompt=add_generation_prompt,
        **kwargs,
    )
    return rendered[0]


def _spec_cases() -> list[Any]:
    if not CASES_FILE.is_file():
        reason = f"spec examples not found at {CASES_FILE} (set INTERNS1_SPEC_DIR)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-spec")]
    cases = json.loads(CASES_FILE.read_text(encoding="utf-8"))
    return [pytest.param(case, id=case["name"]) for case in cases]


def _case_kwargs(case: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"tools": case.get("tools")}
    if "enable_thinking" in case:
        kwargs["enable_thinking"] = case["enable_thinking"]
    return kwargs


def _tool_call(name: str, arguments: Any) -> dict[str, Any]:
    return {
        "id": f"call_{name}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


# --- packaging -----------------------------------------------------------------------------------


def test_template_names_resolve_to_files() -> None:
    for name in TEMPLATE_NAMES:
        path = template_path(name)
        assert path.is_file()
        assert path.suffix == ".jinja"
        assert read_template(name) == path.read_text(encoding="utf-8")


def test_unknown_template_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="interns1_pro"):
        read_template("qwen3")
    with pytest.raises(ValueError):
        template_path("interns1.jinja")


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_content_loop_is_visible_to_vllm(name: str) -> None:
    # vLLM passes list content through to the template ("openai" content format) only when it
    # finds a for-loop over the content; with a macro, the loop must run over the macro argument
    # that receives `message.content` itself. Otherwise parts are flattened and reordered.
    ast = jinja2.Environment().parse(read_template(name))
    macros = {macro.name: macro for macro in ast.find_all(jinja2.nodes.Macro)}
    macro = macros["render_content"]
    param = macro.args[0].name
    assert any(
        isinstance(loop.iter, jinja2.nodes.Name) and loop.iter.name == param
        for loop in macro.find_all(jinja2.nodes.For)
    )
    calls = [
        call
        for call in ast.find_all(jinja2.nodes.Call)
        if isinstance(call.node, jinja2.nodes.Name) and call.node.name == "render_content"
    ]
    assert any(
        isinstance(arg, jinja2.nodes.Getattr)
        and isinstance(arg.node, jinja2.nodes.Name)
        and arg.node.name == "message"
        and arg.attr == "content"
        for call in calls
        for arg in call.args
    )


# --- Intern-S1: the worked examples of the spec --------------------------------------------------


@pytest.mark.parametrize("case", _spec_cases())
def test_spec_case(case: dict[str, Any]) -> None:
    assert render(S1, case["messages"], **_case_kwargs(case)) == case["expected"]


@pytest.mark.parametrize("case", _spec_cases())
def test_spec_case_through_tokenizer(case: dict[str, Any]) -> None:
    """The public `apply_chat_template` path gives the same bytes as the renderer."""
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    backend = tokenizers.Tokenizer(
        tokenizers.models.BPE(vocab={"<unk>": 0, "a": 1}, merges=[], unk_token="<unk>")
    )
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=backend)
    tokenizer.chat_template = read_template(S1)
    kwargs = _case_kwargs(case)
    text = tokenizer.apply_chat_template(
        case["messages"], tokenize=False, add_generation_prompt=True, **kwargs
    )
    assert text == case["expected"]


def render_untrimmed(name: str, messages: list[dict[str, Any]], **kwargs: Any) -> str:
    """Render with plain jinja2, without trim_blocks / lstrip_blocks, generation prompt on."""

    def tojson(value: Any, indent: int | None = None) -> str:
        return json.dumps(value, ensure_ascii=False, indent=indent)

    def raise_exception(message: str) -> None:
        raise jinja2.TemplateError(message)

    env = jinja2.Environment(trim_blocks=False, lstrip_blocks=False)
    env.filters["tojson"] = tojson
    template = env.from_string(read_template(name))
    return template.render(
        messages=messages, add_generation_prompt=True, raise_exception=raise_exception, **kwargs
    )


@pytest.mark.parametrize("case", _spec_cases())
def test_spec_case_without_block_trimming(case: dict[str, Any]) -> None:
    """Every tag trims its own whitespace: the output does not depend on trim/lstrip_blocks."""
    assert render_untrimmed(S1, case["messages"], **_case_kwargs(case)) == case["expected"]


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_rich_conversation_without_block_trimming(name: str) -> None:
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Where?"}]},
        {
            "role": "assistant",
            "content": "Checking.",
            "reasoning_content": "need weather",
            "tool_calls": [_tool_call("a", {"x": 1}), _tool_call("b", '{"y": 2}')],
        },
        {"role": "tool", "content": "A"},
        {"role": "tool", "content": [{"type": "text", "text": "B"}]},
        {"role": "assistant", "content": "<think>\nr\n</think>\n\nDone."},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "and?"}]},
    ]
    for enable_thinking in (True, False):
        kwargs = {"tools": [WEATHER_TOOL], "enable_thinking": enable_thinking}
        expected = render(name, messages, **kwargs)
        assert render_untrimmed(name, messages, **kwargs) == expected


# --- Intern-S1: thinking switch and system prompt ------------------------------------------------

HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_enable_thinking_none_means_not_given(name: str) -> None:
    default = render(name, HI)
    assert render(name, HI, enable_thinking=None) == default
    assert render(name, HI, enable_thinking=True) == default
    assert default.endswith(GEN_ON)
    assert default.startswith(DEFAULT_SYSTEM)
    tools = [WEATHER_TOOL]
    assert render(name, HI, tools=tools, enable_thinking=None) == render(name, HI, tools=tools)


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_thinking_off_has_no_default_prompt_and_plain_generation_prompt(name: str) -> None:
    assert render(name, HI, enable_thinking=False) == (
        f"{formats.IM_START}user\nhi{formats.IM_END}\n{GEN_OFF}"
    )


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_no_generation_prompt(name: str) -> None:
    text = render(name, HI, add_generation_prompt=False)
    assert text == f"{DEFAULT_SYSTEM}{formats.IM_START}user\nhi{formats.IM_END}\n"


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_system_message_after_index_zero_is_dropped(name: str) -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "IGNORED"},
        {"role": "user", "content": "again"},
    ]
    text = render(name, messages)
    assert "IGNORED" not in text
    assert text.startswith(DEFAULT_SYSTEM)
    assert text.count(f"{formats.IM_START}system") == 1


def test_user_system_with_tools_and_thinking_off() -> None:
    messages = [{"role": "system", "content": "Be brief."}, *HI]
    text = render(S1, messages, tools=[WEATHER_TOOL], enable_thinking=False)
    header = f"{formats.IM_START}system name={formats.PLUGIN}\nBe brief.\n\nYour response should"
    assert text.startswith(header)
    assert formats.DEFAULT_SYSTEM_PROMPT not in text
    assert json.dumps([WEATHER_TOOL], indent=2) + formats.IM_END in text


# --- Intern-S1: tool calls and tool results ------------------------------------------------------

WEATHER_Q = [{"role": "user", "content": "weather in Tokyo?"}]


def _action(name: str, arguments: str) -> str:
    return (
        f'{formats.ACTION_START}{formats.PLUGIN}\n{{"name": "{name}", "parameters": {arguments}}}'
        f"\n{formats.ACTION_END}"
    )


def test_arguments_as_mapping_and_as_string_render_alike() -> None:
    as_string = [_tool_call("get_weather", '{"city": "Tokyo"}')]
    as_mapping = [_tool_call("get_weather", {"city": "Tokyo"})]
    texts = [
        render(S1, [*WEATHER_Q, {"role": "assistant", "content": "", "tool_calls": calls}])
        for calls in (as_string, as_mapping)
    ]
    assert texts[0] == texts[1]
    action = _action("get_weather", '{"city": "Tokyo"}')
    assert f"assistant\n{action}{formats.IM_END}" in texts[0]


def test_string_arguments_are_inserted_raw() -> None:
    raw = '{ "city" :"Tokyo" ,"unit":"celsius"}'
    message = {"role": "assistant", "content": "", "tool_calls": [_tool_call("get_weather", raw)]}
    assert _action("get_weather", raw) in render(S1, [*WEATHER_Q, message])


def test_mapping_arguments_keep_order_and_unicode() -> None:
    args = {"city": "東京", "unit": "celsius"}
    message = {"role": "assistant", "content": "", "tool_calls": [_tool_call("get_weather", args)]}
    expected = _action("get_weather", '{"city": "東京", "unit": "celsius"}')
    assert expected in render(S1, [*WEATHER_Q, message])


def test_two_tool_calls_joined_by_newline_after_content() -> None:
    calls = [_tool_call("a", {"x": 1}), _tool_call("b", '{"y": 2}')]
    message = {"role": "assistant", "content": "Checking.", "tool_calls": calls}
    text = render(S1, [*WEATHER_Q, message])
    first, second = _action("a", '{"x": 1}'), _action("b", '{"y": 2}')
    body = f"Checking.{first}\n{second}{formats.IM_END}\n"
    assert f"{formats.IM_START}assistant\n{body}" in text


@pytest.mark.parametrize("content", [None, "", _UNSET])
def test_tool_call_without_content(content: Any) -> None:
    message: dict[str, Any] = {"role": "assistant", "tool_calls": [_tool_call("f", {})]}
    if content is not _UNSET:
        message["content"] = content
    text = render(S1, [*WEATHER_Q, message])
    assert f"{formats.IM_START}assistant\n{_action('f', '{}')}{formats.IM_END}\n" in text


def test_flat_tool_call_without_function_wrapper() -> None:
    message = {"role": "assistant", "content": "", "tool_calls": [{"name": "f", "arguments": {}}]}
    assert _action("f", "{}") in render(S1, [*WEATHER_Q, message])


def test_consecutive_tool_results_are_separate_environment_turns() -> None:
    calls = [_tool_call("a", {}), _tool_call("b", {})]
    messages = [
        *WEATHER_Q,
        {"role": "assistant", "content": "", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_a", "content": "A"},
        {"role": "tool", "tool_call_id": "call_b", "content": "B"},
    ]
    env = f"{formats.IM_START}{formats.ENVIRONMENT_ROLE} name={formats.PLUGIN}\n"
    expected_tail = f"{env}A{formats.IM_END}\n{env}B{formats.IM_END}\n{GEN_ON}"
    assert render(S1, messages).endswith(expected_tail)


# --- Intern-S1: reasoning in history -------------------------------------------------------------


def test_earlier_reasoning_dropped_last_turn_kept() -> None:
    messages = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1", "reasoning_content": "OLD"},
        {"role": "user", "content": "q2"},
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": "r2",
            "tool_calls": [_tool_call("f", {})],
        },
        {"role": "tool", "content": "out"},
        {"role": "assistant", "content": "a2", "reasoning_content": "r3"},
    ]
    text = render(S1, messages)
    assert "OLD" not in text
    assert f"{formats.IM_START}assistant\na1{formats.IM_END}\n" in text
    assert f"assistant\n<think>\nr2\n</think>\n{_action('f', '{}')}{formats.IM_END}" in text
    assert f"assistant\n<think>\nr3\n</think>\na2{formats.IM_END}" in text


def test_reasoning_split_out_of_content() -> None:
    messages = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "<think>\nOLD\n</think>\n\na1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "\nnew thoughts\n</think>\n\na2"},
    ]
    text = render(S1, messages, add_generation_prompt=False)
    assert "OLD" not in text
    assert f"{formats.IM_START}assistant\na1{formats.IM_END}\n" in text
    assert text.endswith(
        f"{formats.IM_START}assistant\n<think>\nnew thoughts\n</think>\na2{formats.IM_END}\n"
    )


def test_reasoning_alias_used_by_vllm() -> None:
    messages = [*WEATHER_Q, {"role": "assistant", "content": "sunny", "reasoning": "look it up"}]
    text = render(S1, messages, add_generation_prompt=False)
    assert text.endswith(f"assistant\n<think>\nlook it up\n</think>\nsunny{formats.IM_END}\n")


def test_empty_reasoning_adds_no_think_block() -> None:
    messages = [*WEATHER_Q, {"role": "assistant", "content": "sunny", "reasoning_content": ""}]
    text = render(S1, messages, add_generation_prompt=False)
    assert text.endswith(f"{formats.IM_START}assistant\nsunny{formats.IM_END}\n")


# --- Intern-S1: content parts --------------------------------------------------------------------


def test_multimodal_parts_including_openai_style() -> None:
    content = [
        {"type": "image_url", "image_url": {"url": "http://x/cat.png"}},
        {"type": "text", "text": "Compare"},
        {"type": "image"},
        {"type": "video_url", "video_url": {"url": "http://x/clip.mp4"}},
        {"type": "text", "text": "please"},
    ]
    text = render(S1, [{"role": "user", "content": content}], enable_thinking=False)
    img, vid = formats.IMG_CONTEXT, formats.VIDEO_PLACEHOLDER
    assert text == (
        f"{formats.IM_START}user\n{img}\nCompare\n{img}\n{vid}\nplease{formats.IM_END}\n{GEN_OFF}"
    )


def test_leading_newlines_of_joined_parts_are_stripped() -> None:
    content = [{"type": "text", "text": "\n\nfirst"}, {"type": "text", "text": "second\n"}]
    text = render(S1, [{"role": "user", "content": content}], enable_thinking=False)
    assert f"user\nfirst\nsecond\n{formats.IM_END}" in text


def test_none_content_renders_empty() -> None:
    messages = [*WEATHER_Q, {"role": "assistant", "content": None}]
    text = render(S1, messages, add_generation_prompt=False)
    assert text.endswith(f"{formats.IM_START}assistant\n{formats.IM_END}\n")


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_unknown_part_type_is_an_error(name: str) -> None:
    content = [{"type": "input_audio", "input_audio": {"data": "..."}}]
    with pytest.raises(jinja2.TemplateError, match="input_audio"):
        render(name, [{"role": "user", "content": content}])


# --- Intern-S1-Pro -------------------------------------------------------------------------------

PRO_TOOLS_INSTRUCTION_HEAD = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
)
PRO_TOOLS_INSTRUCTION_TAIL = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)


def _pro_call(name: str, arguments: str) -> str:
    return (
        f'{formats.TOOL_CALL_START}\n{{"name": "{name}", "arguments": {arguments}}}\n'
        f"{formats.TOOL_CALL_END}"
    )


def test_pro_tools_block() -> None:
    other = {"type": "function", "function": {"name": "noop", "parameters": {}}}
    tools = [WEATHER_TOOL, other]
    tool_lines = f"{json.dumps(WEATHER_TOOL)}\n{json.dumps(other)}"
    block = (
        f"{PRO_TOOLS_INSTRUCTION_HEAD}{tool_lines}{PRO_TOOLS_INSTRUCTION_TAIL}{formats.IM_END}\n"
    )
    user = f"{formats.IM_START}user\nhi{formats.IM_END}\n"

    assert render(PRO, HI, tools=tools) == (
        f"{formats.IM_START}system\n{formats.DEFAULT_SYSTEM_PROMPT}\n\n{block}{user}{GEN_ON}"
    )
    assert render(PRO, HI, tools=tools, enable_thinking=False) == (
        f"{formats.IM_START}system\n{block}{user}{GEN_OFF}"
    )
    with_system = [{"role": "system", "content": "Be brief."}, *HI]
    assert render(PRO, with_system, tools=tools) == (
        f"{formats.IM_START}system\nBe brief.\n\n{block}{user}{GEN_ON}"
    )


def test_pro_tool_calls() -> None:
    calls = [_tool_call("a", {"x": 1}), _tool_call("b", '{"y": 2}')]
    with_content = {"role": "assistant", "content": "Checking.", "tool_calls": calls}
    without_content = {"role": "assistant", "content": None, "tool_calls": calls[:1]}
    first, second = _pro_call("a", '{"x": 1}'), _pro_call("b", '{"y": 2}')
    pair = f"{first}\n{second}"

    text = render(PRO, [*WEATHER_Q, with_content], tools=[WEATHER_TOOL])
    assert f"{formats.IM_START}assistant\nChecking.\n{pair}{formats.IM_END}\n" in text
    text = render(PRO, [*WEATHER_Q, without_content], tools=[WEATHER_TOOL])
    assert f"{formats.IM_START}assistant\n{first}{formats.IM_END}\n" in text


def test_pro_tool_responses_grouped_into_user_turns() -> None:
    messages = [
        *WEATHER_Q,
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [_tool_call("a", {}), _tool_call("b", {})],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "A"},
        {"role": "tool", "tool_call_id": "call_b", "content": "B"},
        {"role": "assistant", "content": "", "tool_calls": [_tool_call("c", {})]},
        {"role": "tool", "tool_call_id": "call_c", "content": "C"},
    ]
    text = render(PRO, messages, tools=[WEATHER_TOOL])

    def response(body: str) -> str:
        return f"\n{formats.TOOL_RESPONSE_START}\n{body}\n{formats.TOOL_RESPONSE_END}"

    grouped = f"{formats.IM_START}user{response('A')}{response('B')}{formats.IM_END}\n"
    single = f"{formats.IM_START}user{response('C')}{formats.IM_END}\n"
    assert grouped in text
    assert text.endswith(single + GEN_ON)
    assert "environment" not in text


def test_pro_reasoning_in_history() -> None:
    messages = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1", "reasoning_content": "OLD"},
        {"role": "user", "content": "q2"},
        {
            "role": "assistant",
            "content": "",
            "reasoning": "r2",
            "tool_calls": [_tool_call("f", {})],
        },
        {"role": "tool", "content": "out"},
        {"role": "assistant", "content": "\nr3\n</think>\n\na2"},
    ]
    text = render(PRO, messages, add_generation_prompt=False)
    assert "OLD" not in text
    assert f"{formats.IM_START}assistant\na1{formats.IM_END}\n" in text
    assert f"assistant\n<think>\nr2\n</think>\n\n{_pro_call('f', '{}')}{formats.IM_END}" in text
    assert text.endswith(f"assistant\n<think>\nr3\n</think>\n\na2{formats.IM_END}\n")


def test_pro_user_turn_of_wrapped_tool_responses_is_not_a_query() -> None:
    messages = [
        *WEATHER_Q,
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": "r1",
            "tool_calls": [_tool_call("f", {})],
        },
        {"role": "user", "content": "<tool_response>\nout\n</tool_response>"},
    ]
    assert "<think>\nr1\n</think>" in render(PRO, messages)


def test_pro_multimodal_placeholders() -> None:
    content = [
        {"type": "image"},
        {"type": "image_url", "image_url": {"url": "http://x/cat.png"}},
        {"type": "text", "text": "Describe "},
        {"type": "video"},
        {"type": "text", "text": " and "},
        {"type": "time_series", "time_series": [0.1, 0.2]},
    ]
    image = f"{formats.VISION_START}{formats.IMAGE_PAD}{formats.VISION_END}"
    video = f"{formats.VISION_START}{formats.VIDEO_PAD}{formats.VISION_END}"
    series = "<|ts_start|><|ts_token|><|ts_end|>"
    text = render(PRO, [{"role": "user", "content": content}], enable_thinking=False)
    assert text == (
        f"{formats.IM_START}user\n{image}{image}Describe {video} and {series}{formats.IM_END}\n"
        f"{GEN_OFF}"
    )


def test_module_prints_template_path_for_chat_template_flag():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "interns1_plugin.chat_templates", "interns1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip().endswith("interns1.jinja")
    bad = subprocess.run(
        [sys.executable, "-m", "interns1_plugin.chat_templates", "nope"], capture_output=True
    )
    assert bad.returncode == 2
