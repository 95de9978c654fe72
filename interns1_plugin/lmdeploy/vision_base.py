"""What the plugin's two LMDeploy vision models share: loading, item collection, packing.

LMDeploy's `VisionModel` loads a tokenizer with the server's `trust_remote_code` flag just to
read a pad token, and its Intern-S1 models build transformers' `AutoProcessor` (remote code for
these checkpoints). The plugin's models load the config and tokenizer through the plugin's own
classes instead, and implement LMDeploy's "new-style" `preprocess(messages, input_prompt,
mm_processor_kwargs)`: LMDeploy renders the prompt with the chat template, the model expands the
placeholders and returns `input_ids` plus one dict per run of features, the format the PyTorch
engine's input processor of the architecture reads. New-style preprocessing is also what keeps
LMDeploy's prefix caching on for multimodal requests.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from lmdeploy.vl.model.base import VisionModel

from interns1_plugin.lmdeploy.checkpoint import load_config, load_tokenizer
from interns1_plugin.lmdeploy.placeholders import ExpandedPrompt, Expansion, expand_prompt

#: One collected item: (modality, data, parameters) as LMDeploy's message parsing leaves it.
Item = tuple[str, Any, dict[str, Any]]


class PluginVisionModel(VisionModel):
    """Base of the plugin's vision models; subclasses set `_arch` and `config_class`."""

    _arch: ClassVar[list[str]]
    #: The plugin's config class the checkpoint must load as.
    config_class: ClassVar[type]
    #: Modalities the model accepts (LMDeploy's `Modality` values).
    modalities: ClassVar[frozenset[str]]

    def __init__(
        self,
        model_path: str,
        with_llm: bool = False,
        max_memory: dict[int, int] | None = None,
        hf_config: Any = None,
        backend: str = "",
        trust_remote_code: bool = False,
    ) -> None:
        # LMDeploy's config is used when it already is the plugin's class (the import hook
        # registers it before LMDeploy loads configs); otherwise it is loaded again without
        # remote code. `trust_remote_code` is never passed on.
        if not isinstance(hf_config, self.config_class):
            hf_config = load_config(model_path)
        if not isinstance(hf_config, self.config_class):
            raise ValueError(
                f"{model_path} loads as {type(hf_config).__name__}, not the plugin's "
                f"{self.config_class.__name__}"
            )
        super().__init__(model_path, with_llm, max_memory, hf_config, backend, False)

    def get_pad_token_id(self, model_path: str, hf_config: Any, trust_remote_code: bool = False):
        """Not needed: the placeholder ids are read in `build_preprocessor`. (LMDeploy's version
        would load a tokenizer with the server's `trust_remote_code`.)"""
        return None

    def build_preprocessor(self, trust_remote_code: bool = False) -> None:
        self.tokenizer = load_tokenizer(self.model_path)

    def build_model(self, trust_remote_code: bool = False) -> None:
        """LMDeploy's PyTorch engine runs the vision tower; nothing to build here."""
        if self.with_llm or self.backend == "turbomind":
            raise NotImplementedError(
                f"{type(self).__name__} preprocesses for LMDeploy's engines; it does not load "
                "the model itself (quantization / TurboMind Python vision are not supported)"
            )

    def token_id(self, token: str, config_id: int | None = None) -> int:
        """A placeholder token's id, checked against the id config.json gives for it."""
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if not isinstance(token_id, int) or token_id == self.tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer of {self.model_path} has no {token!r} token")
        if config_id is not None and int(config_id) != token_id:
            raise ValueError(
                f"{self.model_path}: config.json says {token!r} is id {config_id}, the tokenizer "
                f"says {token_id}; the checkpoint's files disagree"
            )
        return token_id

    def collect_items(self, messages: list[dict]) -> list[Item]:
        """The messages' multimodal items in order; modalities the model lacks are errors."""
        items = [
            (getattr(modality, "value", modality), data, params)
            for modality, data, params in self.collect_multimodal_items(messages)
        ]
        for modality, data, _ in items:
            if modality not in self.modalities:
                raise ValueError(
                    f"{type(self).__name__} does not accept {modality!r} inputs; "
                    f"it accepts {sorted(self.modalities)}"
                )
            if data is None:
                raise ValueError(f"a {modality!r} item carries no data")
        return items

    def feature(self, tensor: torch.Tensor) -> torch.Tensor:
        """A floating feature tensor in the dtype LMDeploy set for multimodal inputs."""
        return self._postprocess_mm_output(tensor, getattr(self, "mm_feature_dtype", None))

    def expand(
        self, input_prompt: str | Sequence[int], expansions: Sequence[Expansion]
    ) -> ExpandedPrompt:
        return expand_prompt(input_prompt, self.tokenizer, expansions)

    @staticmethod
    def result(
        input_prompt: str | Sequence[int], prompt: ExpandedPrompt, multimodal: list[dict]
    ) -> dict[str, Any]:
        """LMDeploy's preprocessing result; items in prompt order, as the engine scatters
        features over the feature tokens in position order."""
        multimodal.sort(key=lambda item: _start(item["offset"]))
        out: dict[str, Any] = {"input_ids": prompt.input_ids, "multimodal": multimodal}
        if isinstance(input_prompt, str):
            out["prompt"] = input_prompt
        return out


def _start(offset: int | tuple[int, int]) -> int:
    return offset if isinstance(offset, int) else offset[0]


def env_positive_int(name: str, default: int) -> int:
    """A positive integer from the environment (a server-wide default), else `default`."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return value


__all__ = ["Item", "PluginVisionModel", "env_positive_int"]
