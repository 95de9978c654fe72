"""Seeded random model outputs, random ways to stream them, and the checks a parser split must pass.

The hand-written cases in `parser_cases` pin behaviours one at a time; the fuzzer throws at the
`intern-s1` parsers what a misbehaving model or detokenizer can produce: text in any script,
`<think>` tags balanced or not, both call formats with and without whitespace between markers,
broken and deep JSON, half markers and typos, all streamed in random pieces. An output is
reproducible from its seed alone (`generate(seed)`), so a failure report only needs the seed.

This module is the one import for tests; each job lives in its own module:

* `fuzz_features`: the feature names an output lists, and `OPEN_DEFECTS`;
* `fuzz_markers`: the markers, the whitespace the parsers may trim, `visible`;
* `fuzz_random`: the randomness interface (`random.Random` or hypothesis');
* `fuzz_builder`: the parts of an output (prose, payloads, blocks, garbled markers);
* `fuzz_generate`: whole outputs from a seed, with the expected split of clean ones;
* `fuzz_call_json`: what a payload means as a call, read apart from the parsers;
* `fuzz_chunking`: the ways to stream an output;
* `fuzz_invariant`: `split_problems`, the "nothing lost" checks (the invariant is stated there);
* `fuzz_runner`: `fuzz` over an engine path, `FuzzRun` and its report;
* `fuzz_minimize`: shrinking a failing output;
* `fuzz_settings`: counts and seeds from the environment.
"""

from __future__ import annotations

# The tests check the generator's reading of a payload against this one.
from interns1_plugin.testing.fuzz_call_json import decoded_call as _decoded_call
from interns1_plugin.testing.fuzz_chunking import CHUNKINGS, all_chunkings, chunk
from interns1_plugin.testing.fuzz_features import (
    ACTION_CALL,
    ARGUMENTS_AS_STRING,
    BROKEN_JSON,
    CLEAN,
    DEEP_JSON,
    DEEP_JSON_AT_LIMIT,
    DEEP_JSON_NEAR_LIMIT,
    DUPLICATE_KEYS,
    FEATURES,
    HUGE_INT,
    INTERPRETER_BLOCK,
    LONE_SURROGATE,
    LONG_GAP,
    MARKER_IN_JSON,
    NOISY,
    NONFINITE_LITERAL,
    NOT_A_CALL,
    OPEN_DEFECTS,
    OVERFLOWING_FLOAT,
    PARTIAL_MARKER,
    QWEN_CALL,
    STRAY_MARKER,
    THINK_TAGS,
    TOO_DEEP_JSON,
    TRUNCATED,
    TYPO_MARKER,
    UNICODE_ESCAPE,
    UNICODE_SPACE,
    UNTERMINATED_BLOCK,
)
from interns1_plugin.testing.fuzz_generate import (
    Expected,
    FuzzOutput,
    generate,
    generate_many,
    output_seed,
)
from interns1_plugin.testing.fuzz_invariant import Split, split_problems
from interns1_plugin.testing.fuzz_markers import MARKERS, WHITESPACE, visible
from interns1_plugin.testing.fuzz_minimize import minimize
from interns1_plugin.testing.fuzz_random import RandomSource
from interns1_plugin.testing.fuzz_runner import EnginePath, Failure, FuzzRun, fuzz, output_problems
from interns1_plugin.testing.fuzz_settings import (
    COUNT_ENV,
    DEFAULT_SEED,
    DEFAULT_STRESS_COUNT,
    SEED_ENV,
    STRESS_COUNT_ENV,
    base_seed,
    fuzz_count,
    stress_count,
)

__all__ = [
    "ACTION_CALL",
    "ARGUMENTS_AS_STRING",
    "BROKEN_JSON",
    "CHUNKINGS",
    "CLEAN",
    "COUNT_ENV",
    "DEEP_JSON",
    "DEEP_JSON_AT_LIMIT",
    "DEEP_JSON_NEAR_LIMIT",
    "DEFAULT_SEED",
    "DEFAULT_STRESS_COUNT",
    "DUPLICATE_KEYS",
    "EnginePath",
    "Expected",
    "FEATURES",
    "Failure",
    "FuzzOutput",
    "FuzzRun",
    "HUGE_INT",
    "INTERPRETER_BLOCK",
    "LONE_SURROGATE",
    "LONG_GAP",
    "MARKERS",
    "MARKER_IN_JSON",
    "NOISY",
    "NONFINITE_LITERAL",
    "NOT_A_CALL",
    "OPEN_DEFECTS",
    "OVERFLOWING_FLOAT",
    "PARTIAL_MARKER",
    "QWEN_CALL",
    "RandomSource",
    "SEED_ENV",
    "STRAY_MARKER",
    "STRESS_COUNT_ENV",
    "Split",
    "THINK_TAGS",
    "TOO_DEEP_JSON",
    "TRUNCATED",
    "TYPO_MARKER",
    "UNICODE_ESCAPE",
    "UNICODE_SPACE",
    "UNTERMINATED_BLOCK",
    "WHITESPACE",
    "_decoded_call",
    "all_chunkings",
    "base_seed",
    "chunk",
    "fuzz",
    "fuzz_count",
    "generate",
    "generate_many",
    "minimize",
    "output_problems",
    "output_seed",
    "split_problems",
    "stress_count",
    "visible",
]
