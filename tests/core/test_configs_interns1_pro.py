"""Intern-S1-Pro's config classes: the published keys read as they are, no remote code.

The tiny checkpoint writes the published shape (FoPE keys in `rope_scaling`, `router_n_groups`, a
Qwen3-VL `vision_config` without deepstack, a `ts_config`); its `auto_map` points at planted
Python files that would leave a marker if anything ran them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import transformers

from interns1_plugin.configs import InternS1_1Config, InternS1ProConfig, register_with_transformers
from interns1_plugin.configs.interns1_pro import (
    InternS1ProTimeSeriesConfig,
    InternS1ProVisionConfig,
)
from interns1_plugin.testing.tiny_interns1_pro import TINY_PRO, build_tiny_interns1_pro

MARKER = "remote_code_ran"
HUB_FILES = ("configuration_interns1_pro.py", "modeling_interns1_pro.py")


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    register_with_transformers()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = build_tiny_interns1_pro(tmp_path_factory.mktemp("pro") / "model", with_auto_map=True)
    for name in HUB_FILES:
        (path / name).write_text(
            "from pathlib import Path\n"
            f"(Path(__file__).parent / {MARKER!r}).write_text({name!r})\n",
            encoding="utf-8",
        )
    return path


@pytest.mark.parametrize("trust_remote_code", [False, True])
def test_autoconfig_reads_pro_without_remote_code(checkpoint: Path, trust_remote_code: bool):
    config = transformers.AutoConfig.from_pretrained(
        checkpoint, trust_remote_code=trust_remote_code
    )
    assert type(config) is InternS1ProConfig
    assert not (checkpoint / MARKER).exists()
    assert not hasattr(config, "auto_map")
    assert type(config.vision_config) is InternS1ProVisionConfig
    assert type(config.ts_config) is InternS1ProTimeSeriesConfig
    assert config.vision_config.deepstack_visual_indexes == []
    assert config.uses_fope


def test_text_config_carries_fope_and_grouped_routing(checkpoint: Path):
    config = transformers.AutoConfig.from_pretrained(checkpoint)
    text = config.get_text_config()
    assert text.model_type == "qwen3_moe"
    assert text.router_n_groups == TINY_PRO.router_n_groups
    assert text.num_experts == TINY_PRO.num_experts
    rope = text.rope_scaling
    assert rope["fope_sep_head"] is True and rope["fope_init_factor"] == 0.5
    assert rope["num_inv_freq"] is None
    assert rope["rope_theta"] == TINY_PRO.rope_theta


def test_token_ids_come_from_the_checkpoint(checkpoint: Path):
    config = transformers.AutoConfig.from_pretrained(checkpoint)
    written = json.loads((checkpoint / "config.json").read_text())
    for key in ("image_token_id", "video_token_id", "ts_token_id", "ts_start_token_id"):
        assert getattr(config, key) == written[key]


def test_published_defaults_for_image_and_video_ids():
    config = InternS1ProConfig()
    assert (config.image_token_id, config.video_token_id) == (151655, 151656)  # SPEC §1
    assert config.ts_config is None


def test_alias_model_type_reads_the_same_file(checkpoint: Path, tmp_path: Path):
    data = json.loads((checkpoint / "config.json").read_text())
    data["model_type"] = "interns1_1"
    data["architectures"] = ["InternS1_1_ForConditionalGeneration"]
    (tmp_path / "config.json").write_text(json.dumps(data))
    config = transformers.AutoConfig.from_pretrained(tmp_path)
    assert type(config) is InternS1_1Config
    assert config.get_text_config().router_n_groups == TINY_PRO.router_n_groups


def test_tie_word_embeddings_follows_the_text_config():
    assert InternS1ProConfig(text_config={"tie_word_embeddings": True}).tie_word_embeddings
    assert not InternS1ProConfig(text_config={"tie_word_embeddings": False}).tie_word_embeddings


def test_unknown_text_model_type_is_read_as_qwen3_moe():
    config = InternS1ProConfig(text_config={"model_type": "interns1_pro_text", "num_experts": 16})
    assert config.text_config.model_type == "qwen3_moe"
    assert config.text_config.num_experts == 16


def test_save_and_reload_round_trips(tmp_path: Path, checkpoint: Path):
    config = transformers.AutoConfig.from_pretrained(checkpoint)
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert "auto_map" not in saved
    again = transformers.AutoConfig.from_pretrained(tmp_path)
    assert {**again.to_dict(), "_name_or_path": ""} == {**config.to_dict(), "_name_or_path": ""}
