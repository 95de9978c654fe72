"""The test server's argv: the caller's flags replace the CPU defaults instead of repeating them."""

from __future__ import annotations

from interns1_plugin.testing.server import CPU_DEFAULT_ARGS, VllmServer, merge_args


def test_an_overridden_default_is_given_once_with_the_callers_value() -> None:
    args = merge_args(CPU_DEFAULT_ARGS, ["--max-model-len", "8192", "--served-model-name", "m"])
    assert args.count("--max-model-len") == 1
    assert args[args.index("--max-model-len") + 1] == "8192"
    assert "2048" not in args
    # The other defaults stay, in their order, before the caller's flags.
    assert args[: args.index("--max-model-len")] == [
        "--kv-cache-memory-bytes",
        "64M",
        "--max-num-seqs",
        "4",
        "--enforce-eager",
    ]


def test_equals_form_and_valueless_flags_override_too() -> None:
    args = merge_args(["--enforce-eager", "--max-num-seqs", "4"], ["--max-num-seqs=2"])
    assert args == ["--enforce-eager", "--max-num-seqs=2"]
    args = merge_args(["--enforce-eager", "--dtype", "float32"], ["--enforce-eager"])
    assert args == ["--dtype", "float32", "--enforce-eager"]


def test_values_that_look_like_json_or_negative_numbers_stay_with_their_flag() -> None:
    defaults = ["--limit-mm-per-prompt", '{"image": 1}', "--seed", "-1"]
    assert merge_args(defaults, ["--seed", "7"]) == [
        "--limit-mm-per-prompt",
        '{"image": 1}',
        "--seed",
        "7",
    ]
    assert merge_args(defaults, []) == defaults


def test_the_server_command_carries_each_flag_once() -> None:
    server = VllmServer("/models/tiny", ["--max-model-len", "8192"], port=8000)
    command = server.command()
    assert command.count("--max-model-len") == 1
    assert command[command.index("--max-model-len") + 1] == "8192"
    assert command[command.index("--port") + 1] == "8000"
