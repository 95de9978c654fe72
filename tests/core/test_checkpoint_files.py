"""Peeking at one checkpoint file: found where the load would look, missing is None."""

from __future__ import annotations

from pathlib import Path

from interns1_plugin.checkpoint_files import find_checkpoint_file


def test_a_file_of_a_local_checkpoint_is_found(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    found = find_checkpoint_file(tmp_path, "config.json", {"trust_remote_code": True})
    assert found is not None and Path(found) == tmp_path / "config.json"


def test_a_missing_file_is_none(tmp_path: Path) -> None:
    assert find_checkpoint_file(tmp_path, "video_preprocessor_config.json", {}) is None


def test_the_subfolder_the_load_names_is_searched(tmp_path: Path) -> None:
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "config.json").write_text("{}", encoding="utf-8")
    assert find_checkpoint_file(tmp_path, "config.json", {}) is None
    found = find_checkpoint_file(tmp_path, "config.json", {"subfolder": "inner"})
    assert found is not None and Path(found) == tmp_path / "inner" / "config.json"
