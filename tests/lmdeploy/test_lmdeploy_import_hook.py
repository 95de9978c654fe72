"""The installed `.pth` hook, checked in fresh interpreters as `lmdeploy serve` would start them.

Each test runs a child `python -c ...` with the test's own interpreter, so what is checked is the
installed package (`pip install -e .` or a wheel) exactly as a user's process sees it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("lmdeploy.serve.parsers", exc_type=ImportError)

from interns1_plugin.lmdeploy import import_hook  # noqa: E402

pytestmark = pytest.mark.lmdeploy

OURS = {
    "reasoning": "interns1_plugin.lmdeploy.reasoning_parser.InternS1ReasoningParser",
    "tool": "interns1_plugin.lmdeploy.tool_parser.InternS1ToolParser",
    "response": "interns1_plugin.lmdeploy.response_parser.InternS1ResponseParser",
}

REPORT = """
import json
from lmdeploy.serve.parsers import ResponseParserManager, validate_parser_names
from lmdeploy.serve.parsers.reasoning_parser import (
    LEGACY_REASONING_PARSER_NAMES,
    ReasoningParserManager,
)
from lmdeploy.serve.parsers.tool_parser import ToolParserManager

def name(cls):
    return None if cls is None else f"{cls.__module__}.{cls.__qualname__}"

reasoning, tool = validate_parser_names("intern-s1", "intern-s1", warn_legacy=False)
print(json.dumps({
    "validated": [reasoning, tool],
    "reasoning": name(ReasoningParserManager.module_dict.get(reasoning)),
    "tool": name(ToolParserManager.module_dict.get(tool)),
    "response": name(ResponseParserManager.get("default")),
    "legacy": list(LEGACY_REASONING_PARSER_NAMES),
}))
"""


def run_child(code: str, *, disable: bool = False, args: tuple[str, ...] = ()) -> str:
    env = {k: v for k, v in os.environ.items() if k != import_hook.DISABLE_ENV}
    if disable:
        env[import_hook.DISABLE_ENV] = "1"
    proc = subprocess.run(
        [sys.executable, *(args or ("-c", textwrap.dedent(code)))],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + "\n" + proc.stderr


def last_json(output: str) -> dict:
    lines = [line for line in output.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def test_pth_file_is_installed_in_site_packages():
    out = run_child("", args=("-m", "interns1_plugin.lmdeploy.check_pth"))
    assert "start-up hook installed" in out, "reinstall: pip install -e ."


@pytest.mark.parametrize(
    "first_import",
    [
        "from lmdeploy.serve.parsers.reasoning_parser import ReasoningParserManager",
        "from lmdeploy.serve.parsers.tool_parser import ToolParserManager",
        "from lmdeploy.serve.parsers import ResponseParserManager",
        "import lmdeploy.serve.openai.api_server",
    ],
    ids=["reasoning_registry", "tool_registry", "response_registry", "api_server"],
)
def test_importing_lmdeploy_registers_ours(first_import):
    report = last_json(run_child(first_import + "\n" + REPORT))
    assert report["validated"] == ["intern-s1", "intern-s1"]
    assert {k: report[k] for k in OURS} == OURS
    assert "intern-s1" not in report["legacy"]


def test_disable_env_var_leaves_lmdeploy_alone():
    report = last_json(run_child(REPORT, disable=True))
    assert report["validated"] == ["default", "intern-s1"]
    assert report["tool"].endswith(".Internlm2ToolParser")
    assert report["response"].endswith(".BaseResponseParser")
    assert "intern-s1" in report["legacy"]


def test_lmdeploy_cli_offers_ours():
    """`lmdeploy serve api_server --help` lists `intern-s1` as registered, not legacy."""
    out = run_child("", args=("-m", "lmdeploy", "serve", "api_server", "--help"))
    text = " ".join(out.split())
    reasoning_help = text.split("--reasoning-parser REASONING_PARSER", 2)[-1]
    registered, _, legacy = reasoning_help.partition("Legacy names")
    assert "'intern-s1'" in registered
    assert "'intern-s1'" not in legacy.split("Default")[0]


def test_plugin_and_hook_import_no_lmdeploy():
    out = run_child(
        """
        import json, sys
        import interns1_plugin
        from interns1_plugin.lmdeploy import import_hook
        import_hook.install()
        import_hook.install()
        finders = [f for f in sys.meta_path if isinstance(f, import_hook.LMDeployParsersFinder)]
        print(json.dumps({
            "lmdeploy": sorted(m for m in sys.modules if m.split(".")[0] == "lmdeploy"),
            "finders": len(finders),
        }))
        """
    )
    assert last_json(out) == {"lmdeploy": [], "finders": 1}


def test_hook_removes_itself_after_registering():
    out = run_child(
        """
        import json, sys
        from lmdeploy.serve.parsers import ResponseParserManager
        from interns1_plugin.lmdeploy import import_hook
        left = [f for f in sys.meta_path if isinstance(f, import_hook.LMDeployParsersFinder)]
        print(json.dumps({"finders": len(left)}))
        """
    )
    assert last_json(out) == {"finders": 0}


def test_failing_registration_is_logged_and_lmdeploy_still_imports():
    # With the module set to None in sys.modules, importing it raises inside the hook.
    out = run_child(
        'import sys\nsys.modules["interns1_plugin.lmdeploy.register"] = None\n' + REPORT
    )
    report = last_json(out)
    assert report["tool"].endswith(".Internlm2ToolParser")
    assert "could not register its LMDeploy parsers" in out
