"""What the plugin's LMDeploy engine models share around LMDeploy's own language model.

Both models are encoders whose features overwrite the embeddings of their placeholder tokens,
in front of an LMDeploy causal LM; they differ in their encoders, their checkpoint's tensor names
and the items a step carries. `InternS1EngineModel` holds the rest once: the engine interface,
the step's inputs, the embedding overwrite and the weight loading frame (the language model's
tensors gathered for it, every other one placed by the subclass, nothing left without a place).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
from lmdeploy.pytorch.engine.input_process import BaseModelInputProcessor
from lmdeploy.pytorch.model_inputs import StepContext, StepContextManager
from lmdeploy.pytorch.models.utils.cudagraph import CudaGraphMixin
from lmdeploy.pytorch.models.utils.model import DeployModelMixin
from torch import nn
from transformers import PretrainedConfig

#: Module path prefix of the language model, whose tensors it loads itself.
LANGUAGE_PREFIX = "language_model."

#: (features, flat step positions they replace), one pair per encoder output of a step.
Features = Sequence[tuple[torch.Tensor, torch.Tensor]]


def join_prefix(prefix: str, name: str) -> str:
    """A submodule's qualified name under `prefix` (which may be empty)."""
    return f"{prefix}.{name}" if prefix else name


class InternS1EngineModel(nn.Module, DeployModelMixin, CudaGraphMixin):
    """Encoders in front of `self.language_model`; subclasses build both and name their tensors.

    A subclass sets `weight_prefixes` and `display_name`, builds `language_model` and
    `input_processor`, and implements `step_items` (the step's items as `forward` keywords),
    `item_features` (those keywords to `Features`) and `load_encoder_weights`.
    """

    # Fused modules of the encoders and the LM, for quantization ignore lists and LoRA.
    packed_modules_mapping = {
        "qkv_proj": ["q_proj", "k_proj", "v_proj"],
        "gate_up_proj": ["gate_proj", "up_proj"],
    }
    #: Checkpoint prefix -> module path: the one weight mapper (applied by LMDeploy's loader).
    weight_prefixes: tuple[tuple[str, str], ...] = ()
    #: The model's name in error messages.
    display_name = "Intern-S1"

    language_model: nn.Module
    input_processor: BaseModelInputProcessor

    def __init__(self, config: PretrainedConfig, ctx_mgr: StepContextManager) -> None:
        super().__init__()
        self.config = config
        self.ctx_mgr = ctx_mgr

    # --- engine interface ---------------------------------------------------------------------

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def get_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.language_model.get_logits(hidden_states)

    def update_weights(self) -> None:
        """Nothing of its own: the language model ties its own embeddings."""

    def get_input_processor(self) -> BaseModelInputProcessor:
        return self.input_processor

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        past_key_values: list[list[torch.Tensor]],
        attn_metadata: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        **items: Any,
    ) -> Any:
        """`items`: what `step_items` gave; their features replace the embeddings at their
        flat step positions, in item order."""
        features = self.item_features(**items)
        if features:
            if inputs_embeds is None:
                inputs_embeds = self.get_input_embeddings()(input_ids)
            for values, index in features:
                if values.shape[0] != index.numel():
                    raise ValueError(
                        f"{values.shape[0]} feature rows for {index.numel()} placeholder positions"
                    )
                inputs_embeds[0, index] = values.to(inputs_embeds.dtype)
        return self.language_model(
            input_ids=input_ids,
            position_ids=position_ids,
            past_key_values=past_key_values,
            attn_metadata=attn_metadata,
            inputs_embeds=inputs_embeds,
        )

    def prepare_inputs_for_generation(
        self,
        past_key_values: list[list[torch.Tensor]],
        inputs_embeds: torch.Tensor | None = None,
        context: StepContext = None,
    ) -> dict[str, Any]:
        input_ids = context.input_ids
        items = self.step_items(context)
        # Features precomputed by LMDeploy's vision path, if any, go in as LMDeploy's models do.
        if context.input_embeddings is not None and len(context.input_embeddings) > 0:
            if inputs_embeds is None:
                inputs_embeds = self.get_input_embeddings()(input_ids)
            indexing = context.input_embedding_indexing
            inputs_embeds[:, indexing, :] = context.input_embeddings.to(inputs_embeds)
        return {
            "input_ids": input_ids,
            "position_ids": context.position_ids,
            "past_key_values": past_key_values,
            "attn_metadata": context.attn_metadata,
            "inputs_embeds": inputs_embeds,
            **items,
        }

    def step_items(self, context: StepContext) -> dict[str, Any]:
        """The step's items as `forward` keywords (all present, None when the step has none)."""
        raise NotImplementedError

    def item_features(self, **items: Any) -> Features:
        """Run the encoders over `step_items`' output."""
        raise NotImplementedError

    # --- weights ------------------------------------------------------------------------------

    @classmethod
    def rename_weight(cls, name: str) -> str:
        """Checkpoint name -> module path (LMDeploy's loader applies it to every tensor)."""
        for old, new in cls.weight_prefixes:
            if name.startswith(old):
                return new + name[len(old) :]
        return name

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load renamed tensors; any tensor without a place here is an error."""
        language: list[tuple[str, torch.Tensor]] = []

        def encoder_weights() -> Iterator[tuple[str, torch.Tensor]]:
            for name, tensor in weights:
                if name.startswith(LANGUAGE_PREFIX):
                    language.append((name[len(LANGUAGE_PREFIX) :], tensor))
                else:
                    yield name, tensor

        self.load_encoder_weights(encoder_weights())
        # The language model stacks q/k/v and gate/up, gathers experts and FP8 scales itself.
        try:
            self.language_model.load_weights(language)
        except KeyError as error:
            raise ValueError(
                f"checkpoint tensor {error.args[0]!r} has no parameter in the language model"
            ) from error

    def load_encoder_weights(self, weights: Iterator[tuple[str, torch.Tensor]]) -> None:
        """Load every tensor outside the language model."""
        raise NotImplementedError

    def checkpoint_param(self, params: dict[str, nn.Parameter], name: str) -> nn.Parameter:
        """The parameter a renamed checkpoint tensor fills; ValueError if there is none."""
        if name not in params:
            raise ValueError(
                f"checkpoint tensor {name!r} has no parameter in the {self.display_name} model"
            )
        return params[name]


__all__ = ["LANGUAGE_PREFIX", "Features", "InternS1EngineModel", "join_prefix"]
