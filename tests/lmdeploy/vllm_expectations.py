"""vLLM's side of `test_lmdeploy_vision.py`: the prompt ids and tensors vLLM's processor makes.

Run as a script in a child process (`python vllm_expectations.py SPEC.json OUT.pt`), so vLLM
never shares a process with LMDeploy. For each case of the spec it renders the messages with the
checkpoint's chat template as vLLM's chat endpoint does (content parts in OpenAI form), loads the
media as vLLM's API server does (the plugin's vLLM video loaders for video files), and runs the
processor vLLM builds for the checkpoint (`MULTIMODAL_REGISTRY.create_processor`).

One deviation, for Intern-S1-Pro videos: vLLM's data parser drops a decoded video's metadata unless
the processor asks for it (`video_needs_metadata`), and the plugin's Pro processor does not ask,
so it re-samples the loader's already sampled frames as if they were a 24 fps source. Its
`_preprocess_video` is written to keep the loader's sampling and timestamps when the metadata
arrives; `keep_pro_video_metadata` makes the parser pass it, which is what LMDeploy's path does.

Spec: `{"models": {name: dir}, "cases": {case: {"model": name, "parts": [...],
"chat_template_kwargs": {...}, "mm_processor_kwargs": {...}, "media_io_kwargs": {...}}}}`; a
part is `{"type": "text", "text": ...}`, `{"type": "image", "path": ...}`, `{"type": "video",
"path": ...}` or `{"type": "time_series", "path": ..., "sampling_rate": ...}`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

#: Feature tensors a case reports, per model family.
_FEATURES = (
    "pixel_values",
    "pixel_values_videos",
    "image_num_patches",
    "video_num_patches",
    "image_grid_thw",
    "video_grid_thw",
    "ts_sampling_rate",
    "ts_num_tokens",
)


def _video(path: str, model_type: str, media_io_kwargs: dict[str, Any]) -> Any:
    """Decoded as vLLM's API server decodes a video file: the plugin's registered loader."""
    data = Path(path).read_bytes()
    if model_type == "interns1":
        from interns1_plugin.vllm.multimodal.interns1 import InternS1VideoLoader

        frames, _ = InternS1VideoLoader.load_bytes(data, **media_io_kwargs)
        return frames
    from interns1_plugin.vllm.multimodal.interns1_pro import InternS1ProVideoLoader

    return InternS1ProVideoLoader.load_bytes(data, **media_io_kwargs)


def _mm_data(parts: list[dict[str, Any]], model_type: str, media: dict[str, Any]) -> dict:
    import numpy as np
    from PIL import Image

    data: dict[str, list[Any]] = {}
    for part in parts:
        kind = part["type"]
        if kind == "image":
            with Image.open(part["path"]) as image:
                data.setdefault("image", []).append(image.convert("RGB"))
        elif kind == "video":
            video = _video(part["path"], model_type, media.get("video", {}))
            data.setdefault("video", []).append(video)
        elif kind == "time_series":
            payload: dict[str, Any] = {"values": np.load(part["path"])}
            if part.get("sampling_rate") is not None:
                payload["sampling_rate"] = part["sampling_rate"]
            data.setdefault("time_series", []).append(payload)
    return data


def keep_pro_video_metadata() -> None:
    """Let the Pro processor see the loader's `(frames, metadata)` (see the module doc)."""
    from interns1_plugin.vllm.multimodal.interns1_pro import (
        InternS1ProDataParser,
        InternS1ProProcessingInfo,
    )

    def get_data_parser(self: InternS1ProProcessingInfo) -> InternS1ProDataParser:
        return InternS1ProDataParser(
            video_needs_metadata=True,
            expected_hidden_size=self._get_expected_hidden_size(),
            allow_missing_mm_embeddings=self.allow_missing_mm_embeddings,
        )

    InternS1ProProcessingInfo.get_data_parser = get_data_parser


def _openai_parts(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p if p["type"] == "text" else {"type": p["type"]} for p in parts]


def run(spec: dict[str, Any]) -> dict[str, Any]:
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    import torch
    from vllm.config import ModelConfig
    from vllm.multimodal import MULTIMODAL_REGISTRY
    from vllm.plugins import load_general_plugins

    load_general_plugins()
    keep_pro_video_metadata()
    processors: dict[str, Any] = {}
    model_types: dict[str, str] = {}
    for name, model_dir in spec["models"].items():
        limits = {"image": 4, "video": 2}
        if json.loads((Path(model_dir) / "config.json").read_text())["model_type"] != "interns1":
            limits["time_series"] = 2
        config = ModelConfig(model=model_dir, dtype="float32", limit_mm_per_prompt=limits)
        processors[name] = MULTIMODAL_REGISTRY.create_processor(config)
        model_types[name] = config.hf_config.model_type
    results: dict[str, Any] = {}
    for case_name, case in spec["cases"].items():
        processor = processors[case["model"]]
        tokenizer = processor.info.get_tokenizer()
        messages = [{"role": "user", "content": _openai_parts(case["parts"])}]
        text = tokenizer.apply_chat_template(
            messages,
            tokenize=False,
            add_generation_prompt=True,
            **case.get("chat_template_kwargs", {}),
        )
        ids = tokenizer.encode(text, add_special_tokens=False)
        media = case.get("media_io_kwargs", {})
        mm_data = _mm_data(case["parts"], model_types[case["model"]], media)
        processed = processor(
            ids,
            processor.info.parse_mm_data(mm_data),
            hf_processor_mm_kwargs=case.get("mm_processor_kwargs", {}),
        )
        data = processed["mm_kwargs"].get_data()
        out: dict[str, Any] = {
            "prompt": text,
            "prompt_token_ids": list(processed["prompt_token_ids"]),
            "placeholders": {
                modality: [(p.offset, p.length) for p in places]
                for modality, places in processed["mm_placeholders"].items()
            },
        }
        for key in _FEATURES:
            if key in data:
                out[key] = data[key]
        if "ts_values" in data:
            values = data["ts_values"]
            out["ts_values"] = list(values) if isinstance(values, torch.Tensor) else values
        results[case_name] = out
    return results


if __name__ == "__main__":
    import torch

    result = run(json.loads(Path(sys.argv[1]).read_text()))
    torch.save(result, sys.argv[2])
