"""Engine-agnostic `intern-s1` output parsing: reasoning, content and tool calls.

Importable with no engine installed; the engine adapters translate these events into their types.
"""

from interns1_plugin.parsers.call_formats import ACTION_FORMAT, QWEN_FORMAT, decode_call
from interns1_plugin.parsers.events import ParsedDelta, ParsedOutput, ToolCall
from interns1_plugin.parsers.output_parser import InternS1OutputParser, parse_output
from interns1_plugin.parsers.reasoning import ReasoningSplitter, split_reasoning
from interns1_plugin.parsers.tool_calls import ToolCallExtractor, extract_tool_calls

__all__ = [
    "ACTION_FORMAT",
    "QWEN_FORMAT",
    "InternS1OutputParser",
    "ParsedDelta",
    "ParsedOutput",
    "ReasoningSplitter",
    "ToolCall",
    "ToolCallExtractor",
    "decode_call",
    "extract_tool_calls",
    "parse_output",
    "split_reasoning",
]
