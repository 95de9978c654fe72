"""Unit tests of the LMDeploy integration's helpers: placeholder expansion, request options and
the registry ordering that makes the plugin's classes win."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("lmdeploy.serve.parsers", exc_type=ImportError)

from interns1_plugin import formats  # noqa: E402
from interns1_plugin.lmdeploy.options import request_options  # noqa: E402
from interns1_plugin.lmdeploy.placeholders import Expansion, expand_prompt, token_runs  # noqa: E402

pytestmark = pytest.mark.lmdeploy

IMG = formats.IMG_CONTEXT


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    from interns1_plugin.lmdeploy.checkpoint import load_tokenizer
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1

    path = build_tiny_interns1(tmp_path_factory.mktemp("placeholders") / "m", "mini")
    return load_tokenizer(Path(path))


@pytest.fixture(scope="module")
def merging_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    """The dynamic tokenizer, whose BPE merges `the` with the space before it."""
    from interns1_plugin.lmdeploy.checkpoint import load_tokenizer
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1, write_dynamic_tokenizer

    root = tmp_path_factory.mktemp("placeholders-merging")
    path = build_tiny_interns1(root / "m", "mini", tokenizer_writer=write_dynamic_tokenizer)
    return load_tokenizer(Path(path))


def _image(count: int) -> Expansion:
    return Expansion("image", IMG, formats.IMG_START + IMG * count + formats.IMG_END, IMG)


def test_items_take_their_modalitys_placeholders_in_order(tokenizer) -> None:
    video = Expansion("video", formats.VIDEO_PLACEHOLDER, f"A{IMG}\nB{IMG}{IMG}", IMG)
    prompt = f"x{IMG}y{formats.VIDEO_PLACEHOLDER}z{IMG}"
    expanded = expand_prompt(prompt, tokenizer, [_image(2), _image(1), video])
    text = tokenizer.decode(expanded.input_ids)
    assert text == (f"x<img>{IMG * 2}</img>y" + f"A{IMG}\nB{IMG * 2}" + f"z<img>{IMG}</img>")
    img_id = tokenizer.convert_tokens_to_ids(IMG)
    all_runs = token_runs(expanded.input_ids, img_id)
    # first image, the video's two frames, the second image: each item its own runs
    assert expanded.runs == [[all_runs[0]], [all_runs[3]], [all_runs[1], all_runs[2]]]
    assert (
        expand_prompt(
            tokenizer.encode(prompt, add_special_tokens=False),
            tokenizer,
            [_image(2), _image(1), video],
        )
        == expanded
    ), "token ids in give the same result as text"


def test_text_fallback_when_the_placeholder_is_not_a_token_in_context(
    merging_tokenizer,
) -> None:
    """Like vLLM: a placeholder BPE merged with its neighbours is replaced in text."""
    tokenizer, target, prompt = merging_tokenizer, "he", "on the mat"
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    target_ids = tokenizer.encode(target, add_special_tokens=False)
    assert all(ids[i : i + len(target_ids)] != target_ids for i in range(len(ids))), (
        "the test needs a target that does not appear as tokens in the prompt"
    )
    expanded = expand_prompt(prompt, tokenizer, [Expansion("x", target, IMG * 2, IMG)])
    assert tokenizer.decode(expanded.input_ids) == f"on t{IMG * 2} mat"
    start = expanded.input_ids.index(tokenizer.convert_tokens_to_ids(IMG))
    assert expanded.runs == [[(start, start + 2)]]


def test_missing_and_stray_placeholders_are_errors(tokenizer) -> None:
    with pytest.raises(ValueError, match="fewer placeholders than multimodal items"):
        expand_prompt(f"one {IMG}", tokenizer, [_image(1), _image(1)])
    with pytest.raises(ValueError, match="holds 3"):
        expand_prompt(f"{IMG} and {IMG}", tokenizer, [_image(2)])


def test_request_options_flat_and_per_modality() -> None:
    nested = {"image": {"max_patches": "max_patches"}, "video": {"num_frames": "num_frames"}}
    flat = frozenset({"max_patches", "num_frames"})
    assert request_options(None, flat=flat, nested=nested) == {}
    got = request_options({"image": {"max_patches": 4}, "num_frames": 8}, flat=flat, nested=nested)
    assert got == {"max_patches": 4, "num_frames": 8}
    with pytest.raises(ValueError, match="twice"):
        request_options({"image": {"max_patches": 4}, "max_patches": 5}, flat=flat, nested=nested)
    with pytest.raises(ValueError, match="unknown"):
        request_options({"video": {"fps": 2}}, flat=flat, nested=nested)


def test_put_first_reorders_in_place_and_is_idempotent() -> None:
    from mmengine import Registry

    from interns1_plugin.lmdeploy.register import put_first

    registry = Registry("test")
    for name in ("a", "b", "c"):
        registry.register_module(name=name, module=type(name, (), {}))
    table = registry.module_dict
    ours = type("ours", (), {})
    assert put_first(registry, [("b", ours), ("z", ours)]) is True
    assert registry.module_dict is table
    assert list(table) == ["b", "z", "a", "c"] and table["b"] is ours
    assert put_first(registry, [("b", ours), ("z", ours)]) is False
