"""The features a fuzzed output may use, by name, and the ones that break an invariant today.

Each generated output lists its features, so a failure report says what the output exercised
and a run can leave out (`exclude`) what is known to fail.
"""

from __future__ import annotations

#: Features a generated output may use; each output lists the ones it does.
CLEAN = "clean"
NOISY = "noisy"
TRUNCATED = "truncated"
ACTION_CALL = "action_call"
QWEN_CALL = "qwen_call"
BROKEN_JSON = "broken_json"
NOT_A_CALL = "not_a_call"
UNTERMINATED_BLOCK = "unterminated_block"
PARTIAL_MARKER = "partial_marker"
TYPO_MARKER = "typo_marker"
STRAY_MARKER = "stray_marker"
LONG_GAP = "long_gap"
INTERPRETER_BLOCK = "interpreter_block"
THINK_TAGS = "think_tags"
UNICODE_ESCAPE = "unicode_escape"
ARGUMENTS_AS_STRING = "arguments_as_string"
DEEP_JSON = "deep_json"
TOO_DEEP_JSON = "too_deep_json"
HUGE_INT = "huge_int"
NONFINITE_LITERAL = "nonfinite_literal"
DUPLICATE_KEYS = "duplicate_keys"
MARKER_IN_JSON = "marker_in_json"
#: Characters Python calls whitespace but the parsers do not (`\u3000`, `\x0b`...): kept.
UNICODE_SPACE = "unicode_space"
#: `1e400`: a finite JSON literal that Python reads as an infinite float; a call whose
#: arguments hold one has no faithful rendering, so its block stays text.
OVERFLOWING_FLOAT = "overflowing_float"
#: `"\\ud800"`: an escape for half a surrogate pair, which UTF-8 cannot encode; a call whose
#: arguments hold one stays text.
LONE_SURROGATE = "lone_surrogate"
#: Nesting of 600 to 999 levels inside the arguments: over `MAX_JSON_DEPTH` once the call and
#: arguments objects are counted, so text, whatever the caller's stack depth. (Before the bound,
#: Python's recursive decoder made these a call or not depending on that depth.)
DEEP_JSON_NEAR_LIMIT = "deep_json_near_limit"
#: Total nesting within two levels of `MAX_JSON_DEPTH` either side: a call up to the limit, text
#: past it. Pins the bound's off-by-one, for arguments given as an object and as a string.
DEEP_JSON_AT_LIMIT = "deep_json_at_limit"

FEATURES: frozenset[str] = frozenset(
    {
        CLEAN, NOISY, TRUNCATED, ACTION_CALL, QWEN_CALL, BROKEN_JSON, NOT_A_CALL,
        UNTERMINATED_BLOCK, PARTIAL_MARKER, TYPO_MARKER, STRAY_MARKER, LONG_GAP,
        INTERPRETER_BLOCK, THINK_TAGS, UNICODE_ESCAPE, ARGUMENTS_AS_STRING, DEEP_JSON,
        TOO_DEEP_JSON, HUGE_INT, NONFINITE_LITERAL, DUPLICATE_KEYS, MARKER_IN_JSON,
        UNICODE_SPACE, OVERFLOWING_FLOAT, LONE_SURROGATE, DEEP_JSON_NEAR_LIMIT,
        DEEP_JSON_AT_LIMIT,
    }
)  # fmt: skip

#: Features whose outputs break an invariant today: `generate` leaves them out by default and
#: `tests/core/test_parser_fuzz.py` pins each with a strict xfail. Remove one when it is fixed.
#: (An engine path may leave out more: see `VLLM_EXCLUDE` in the vLLM fuzz tests.)
OPEN_DEFECTS: frozenset[str] = frozenset()
