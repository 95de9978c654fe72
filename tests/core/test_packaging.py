"""What `pip install interns1-plugin` puts on a user's machine: sdist -> wheel -> install.

The suite otherwise runs against the editable install, which maps the source folders directly
and would hide a subpackage missing from `pyproject.toml`, a template left out of the package
data or a build hook missing from the sdist. Here the sdist is built from a copy of the source
tree, the wheel from the unpacked sdist, and the wheel installed into a folder of its own that a
child interpreter imports from with the editable install out of sight.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

from interns1_plugin.lmdeploy import check_pth, import_hook

REPO = Path(__file__).resolve().parents[2]
#: Source folder -> where its files land in the wheel (`parsers/` and `chat_templates/` are
#: mapped into the one import package).
PACKAGE_DIRS = {
    "interns1_plugin": "interns1_plugin",
    "parsers": "interns1_plugin/parsers",
    "chat_templates": "interns1_plugin/chat_templates",
}
_NOT_SOURCE = shutil.ignore_patterns(
    ".venv",
    ".git",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    ".*_cache",
    ".hypothesis",
    "demo-checkpoint",
)


def _run(command: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds from the project's sdist (no network: the venv's setuptools)."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE, symlinks=True)
    build_sdist = (
        "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"
    )
    sdist_name = _run([sys.executable, "-c", build_sdist, str(work / "sdist")], cwd=source)
    with tarfile.open(work / "sdist" / sdist_name.strip().splitlines()[-1]) as archive:
        archive.extractall(work / "unpacked", filter="data")
    (unpacked,) = (work / "unpacked").iterdir()
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    _run([*pip_wheel, "-w", str(work / "wheel"), str(unpacked)])
    (built,) = (work / "wheel").glob("interns1_plugin-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    pip_install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile"]
    _run([*pip_install, "--target", str(target), str(wheel)])
    return target


def _source_files() -> set[str]:
    """Every module and template of the source tree, named as the wheel must hold it."""
    expected = set()
    for folder, packaged in PACKAGE_DIRS.items():
        for path in (REPO / folder).rglob("*"):
            if path.suffix in {".py", ".jinja"} and "__pycache__" not in path.parts:
                expected.add(f"{packaged}/{path.relative_to(REPO / folder).as_posix()}")
    return expected


def test_the_wheel_holds_every_module_and_template_and_nothing_else_at_top_level(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = _source_files() - names
    assert not missing, f"left out of the wheel: {sorted(missing)}"
    top_level = {name.split("/", 1)[0] for name in names}
    dist_info = {name for name in top_level if name.endswith(".dist-info")}
    assert len(dist_info) == 1
    assert top_level - dist_info == {"interns1_plugin", import_hook.PTH_FILENAME}


def test_the_build_hook_reads_the_pth_line_while_the_plugin_is_not_importable() -> None:
    """A fresh editable install runs `build_pth` before the plugin can be imported, and
    setuptools only warns when the hook fails there: the `.pth` would silently be missing.

    The child runs without `site` (so without the editable install's finder) and is given the
    venv's packages (setuptools) by path alone."""
    code = textwrap.dedent(
        f"""
        import importlib.util, json, sys
        sys.path.append({sysconfig.get_paths()["purelib"]!r})
        spec = importlib.util.spec_from_file_location("build_pth", {str(REPO / "build_pth.py")!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert importlib.util.find_spec("interns1_plugin") is None, "the plugin is importable"
        print(json.dumps(module._pth_name_and_line()))
        """
    )
    printed = _run([sys.executable, "-S", "-c", code], cwd=REPO.parent).splitlines()[-1]
    assert json.loads(printed) == [import_hook.PTH_FILENAME, import_hook.PTH_LINE]


def test_the_wheel_declares_the_vllm_plugin_and_ships_the_start_up_hook(wheel):
    archive = zipfile.ZipFile(wheel)
    (entry_points,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = archive.read(entry_points).decode()
    assert "[vllm.general_plugins]" in text
    assert "interns1 = interns1_plugin.vllm.register:register" in text
    assert archive.read(import_hook.PTH_FILENAME).decode().strip() == import_hook.PTH_LINE


# Runs under `python -S`: the venv's site-packages (jinja2, numpy, the engines) are appended to
# the path without running their `.pth` files, so the editable install's finder never loads and
# every `interns1_plugin` module must come from the installed wheel.
_CHILD = """
import json, site, sys
target, venv_site = sys.argv[1], sys.argv[2]
sys.path.insert(0, target)
site.addsitedir(target)  # runs the wheel's .pth, as site-packages would
sys.path.append(venv_site)

import interns1_plugin
from interns1_plugin.chat_templates import TEMPLATE_NAMES, read_template, template_path
from interns1_plugin.parsers import parse_output
from interns1_plugin import formats

HOOK = "interns1_plugin.lmdeploy.import_hook"

parsed = parse_output(
    f"{formats.THINK_START}plan{formats.THINK_END}"
    f'{formats.TOOL_CALL_START}{{"name": "f", "arguments": {{"x": 1}}}}{formats.TOOL_CALL_END}'
)
print(json.dumps({
    "package": interns1_plugin.__file__,
    "templates": [str(template_path(name)) for name in TEMPLATE_NAMES],
    "template_chars": [len(read_template(name)) for name in TEMPLATE_NAMES],
    "reasoning": parsed.reasoning,
    "calls": [[call.name, call.arguments] for call in parsed.tool_calls],
    "hooked": any(type(f).__module__ == HOOK for f in sys.meta_path),
    "engines_imported": sorted(m for m in ("vllm", "lmdeploy") if m in sys.modules),
}))
"""


def _run_installed(installed: Path, code: str = _CHILD) -> dict:
    venv_site = sysconfig.get_paths()["purelib"]
    command = [sys.executable, "-S", "-c", textwrap.dedent(code), str(installed), venv_site]
    return json.loads(_run(command).splitlines()[-1])


def test_the_installed_wheel_imports_parses_and_finds_its_templates(installed):
    report = _run_installed(installed)
    assert Path(report["package"]).is_relative_to(installed)
    for path in report["templates"]:
        assert Path(path).is_relative_to(installed) and Path(path).is_file()
    assert all(chars > 0 for chars in report["template_chars"])
    assert report["reasoning"] == "plan"
    assert report["calls"] == [["f", '{"x": 1}']]
    assert report["hooked"], "the wheel's .pth did not install the LMDeploy import hook"
    assert report["engines_imported"] == []


def test_lmdeploy_finds_the_parsers_of_the_installed_wheel(installed):
    pytest.importorskip("lmdeploy.serve.parsers", exc_type=ImportError)
    code = _CHILD.split("import interns1_plugin\n")[0] + textwrap.dedent(
        """
        from lmdeploy.serve.parsers.reasoning_parser import ReasoningParserManager
        from lmdeploy.serve.parsers.tool_parser import ToolParserManager
        managers = {"reasoning": ReasoningParserManager, "tool": ToolParserManager}
        print(json.dumps({
            name: sys.modules[manager.module_dict["intern-s1"].__module__].__file__
            for name, manager in managers.items()
        }))
        """
    )
    for path in _run_installed(installed, code).values():
        assert Path(path).is_relative_to(installed)


@pytest.mark.parametrize(
    ("content", "code"),
    [(None, 1), ("import something_else\n", 1), (import_hook.PTH_LINE + "\n", 0)],
    ids=["missing", "foreign_line", "installed"],
)
def test_the_environment_check_fails_without_the_start_up_hook(
    tmp_path, monkeypatch, capsys, content, code
):
    if content is not None:
        (tmp_path / import_hook.PTH_FILENAME).write_text(content, encoding="utf-8")
    monkeypatch.setattr(check_pth.site, "getsitepackages", lambda: [str(tmp_path)])
    monkeypatch.setattr(check_pth.site, "getusersitepackages", lambda: str(tmp_path / "user"))
    assert check_pth.main() == code
    if code:
        assert import_hook.PTH_FILENAME in capsys.readouterr().err
