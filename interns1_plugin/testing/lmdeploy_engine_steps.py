"""Run a checkpoint through LMDeploy's PyTorch-engine model path one step at a time, on CPU.

`EngineSteps` does what LMDeploy's model agent does for a model, minus scheduling: the config
through `ModelConfig.from_pretrained`, the class through `build_patched_model` (so through the
module map), the weights through `load_model_weights`, a paged KV cache in the backend's block
shape, and for each step `ModelInputs` -> `StepContext.new` -> `prepare_inputs_for_generation` ->
`forward` -> `get_logits`. Multimodal items go through the model's input processor and reach a
step the way LMDeploy's scheduler hands them over: only items lying wholly inside the step.

The operators come from whatever backend LMDeploy's selector returns; on a machine without CUDA,
select `lmdeploy_reference_backend` first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Sequence:
    """One request's state: its prompt, what the cache holds, its block table and its items."""

    token_ids: list[int]
    blocks: list[int]
    multimodals: dict[str, list[Any]] = field(default_factory=dict)
    cached: int = 0


class EngineSteps:
    """A model built and loaded as LMDeploy's engine builds it, with a small block cache."""

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        dtype: str = "float32",
        block_size: int = 16,
        num_blocks: int = 256,
        load_weights: bool = True,
        dist_config: Any = None,
    ) -> None:
        """`load_weights=False` leaves the parameters as built (uninitialized). `dist_config`
        (LMDeploy's `DistConfig`) builds this rank's shard; its `DistContext` must be current."""
        from lmdeploy.pytorch.backends import get_backend
        from lmdeploy.pytorch.config import CacheConfig, ModelConfig
        from lmdeploy.pytorch.model_inputs import BuildModelContext
        from lmdeploy.pytorch.models.patch import build_patched_model
        from lmdeploy.pytorch.weight_loader.model_weight_loader import load_model_weights

        path = os.fspath(model_path)
        self.device = torch.device("cpu")
        self.model_config = ModelConfig.from_pretrained(
            path, dtype=dtype, device_type="cpu", dist_config=dist_config
        )
        self.cache_config = CacheConfig(
            max_batches=8,
            block_size=block_size,
            num_cpu_blocks=0,
            num_gpu_blocks=num_blocks,
            device_type="cpu",
        )
        build_ctx = BuildModelContext(
            quant_config=self.model_config.quant_config,
            tie_word_embeddings=self.model_config.tie_word_embeddings,
        )
        self.model = build_patched_model(self.model_config, self.device, build_ctx)
        if load_weights:
            load_model_weights(self.model, path, device=self.device)
        backend = get_backend()
        cfg, dt = self.model_config, self.model_config.dtype
        # This rank's KV heads, as LMDeploy's cache plan splits them over attention TP ranks.
        kv_heads = cfg.num_key_value_heads // cfg.dist_config.attn_tp
        k_shape = backend.get_k_block_shape(block_size, kv_heads, cfg.k_head_dim, dt)
        v_shape = backend.get_v_block_shape(block_size, kv_heads, cfg.v_head_dim, dt)
        self.kv_caches = [
            (
                torch.zeros(num_blocks, *k_shape, dtype=dt),
                torch.zeros(num_blocks, *v_shape, dtype=dt),
            )
            for _ in range(cfg.num_layers)
        ]
        self._free_blocks = list(range(num_blocks))

    def new_sequence(self, token_ids: list[int], items: list[dict] | None = None) -> Sequence:
        """A request as the engine takes it in: items checked and packed by the input processor."""
        multimodals: dict[str, list[Any]] = {}
        if items:
            processor = self.model.get_input_processor()
            result = processor.preprocess_input(list(token_ids), items)
            token_ids = result.input_ids
            multimodals = result.input_multimodals or {}
        return Sequence(list(token_ids), blocks=[], multimodals=multimodals)

    def step(self, chunks: list[tuple[Sequence, list[int]]]) -> list[torch.Tensor]:
        """One forward over the next tokens of each sequence; logits `(tokens, vocab)` each."""
        from lmdeploy.pytorch.model_inputs import (
            ModelInputs,
            VisionModelInputs,
            step_ctx_manager,
        )

        lengths = [len(tokens) for _, tokens in chunks]
        history = [seq.cached for seq, _ in chunks]
        for (seq, _), length in zip(chunks, lengths, strict=True):
            self._reserve(seq, seq.cached + length)
        width = max(len(seq.blocks) for seq, _ in chunks)
        table = torch.tensor([seq.blocks + [0] * (width - len(seq.blocks)) for seq, _ in chunks])
        multimodals = [self._items_within(seq, len(tokens)) for seq, tokens in chunks]
        decoding = all(n == 1 for n in lengths) and all(h > 0 for h in history)
        inputs = ModelInputs(
            input_ids=torch.tensor([t for _, tokens in chunks for t in tokens])[None],
            seq_length=torch.tensor(lengths),
            history_lengths=torch.tensor(history),
            block_offsets=table,
            is_decoding=decoding,
            num_ignored_history=torch.zeros(len(chunks), dtype=torch.long),
            max_q_seqlen=max(lengths),
            max_kv_seqlen=max(h + n for h, n in zip(history, lengths, strict=True)),
            sum_kv_seqlen=sum(history) + sum(lengths),
            vision_inputs=(
                VisionModelInputs(input_multimodals=multimodals) if any(multimodals) else None
            ),
        )
        ctx_mgr = self.model.ctx_mgr
        with torch.inference_mode(), step_ctx_manager(ctx_mgr):
            context = ctx_mgr.build_context(
                inputs=inputs,
                model_config=self.model_config,
                cache_config=self.cache_config,
                kv_caches=self.kv_caches,
            )
            with ctx_mgr.context(context):
                model_inputs = self.model.prepare_inputs_for_generation(
                    past_key_values=self.kv_caches, context=context
                )
                output = self.model(**model_inputs)
                hidden = output["hidden_states"] if isinstance(output, dict) else output
                logits = self.model.get_logits(hidden)[0].float()
        for (seq, _), length in zip(chunks, lengths, strict=True):
            seq.cached += length
        return list(logits.split(lengths))

    def prefill(self, seq: Sequence, chunk_sizes: list[int] | None = None) -> torch.Tensor:
        """The whole prompt in one step (or in chunks of the given sizes); all logits."""
        sizes = chunk_sizes or [len(seq.token_ids) - seq.cached]
        out = []
        for size in sizes:
            start = seq.cached
            out += self.step([(seq, seq.token_ids[start : start + size])])
        return torch.cat(out)

    def decode(self, seq: Sequence, token: int) -> torch.Tensor:
        """Append one token and return its next-token logits."""
        seq.token_ids.append(token)
        return self.step([(seq, [token])])[0][-1]

    def prefill_request(
        self, request: Mapping[str, Any], chunk_sizes: list[int] | None = None
    ) -> torch.Tensor:
        """All prompt logits of a request as the API server hands it over (`input_ids`,
        `multimodal`), as a sequence of its own whose blocks are given back afterwards."""
        seq = self.new_sequence(request["input_ids"], request.get("multimodal"))
        try:
            return self.prefill(seq, chunk_sizes)
        finally:
            self.release(seq)

    def prefill_together(self, requests: list[Mapping[str, Any]]) -> list[torch.Tensor]:
        """The requests' whole prompts in one step, batched; all logits of each."""
        seqs = [self.new_sequence(r["input_ids"], r.get("multimodal")) for r in requests]
        try:
            return self.step([(seq, seq.token_ids) for seq in seqs])
        finally:
            for seq in seqs:
                self.release(seq)

    def chunk_drift(self, request: Mapping[str, Any], split: int) -> float:
        """The largest difference between the prompt logits of a prefill in two chunks, the
        first `split` tokens long, and of one whole prefill."""
        whole = self.prefill_request(request)
        chunked = self.prefill_request(request, [split, len(request["input_ids"]) - split])
        return float((chunked - whole).abs().max())

    def decode_drift(self, request: Mapping[str, Any], steps: int) -> list[float]:
        """Greedy decode steps through the paged cache against a fresh prefill of the same tokens:
        per step, the largest difference between the step's logits and the prefill's last row."""
        items = request.get("multimodal")
        seq = self.new_sequence(request["input_ids"], items)
        drift = []
        try:
            token = int(self.prefill(seq)[-1].argmax())
            for _ in range(steps):
                step = self.decode(seq, token)
                once = self.prefill_request({"input_ids": list(seq.token_ids), "multimodal": items})
                drift.append(float((step - once[-1]).abs().max()))
                token = int(step.argmax())
        finally:
            self.release(seq)
        return drift

    def release(self, seq: Sequence) -> None:
        """Give the sequence's blocks back; it cannot run another step."""
        self._free_blocks += reversed(seq.blocks)
        seq.blocks = []
        seq.cached = 0

    def _reserve(self, seq: Sequence, tokens: int) -> None:
        needed = -(-tokens // self.cache_config.block_size)
        while len(seq.blocks) < needed:
            # Blocks are taken from the far end first, so tables are not the identity.
            seq.blocks.append(self._free_blocks.pop())

    @staticmethod
    def _items_within(seq: Sequence, length: int) -> dict[str, list[Any]]:
        """The items LMDeploy's scheduler hands a step: those lying wholly inside it."""
        window = range(seq.cached, seq.cached + length)
        chosen: dict[str, list[Any]] = {}
        for kind, items in seq.multimodals.items():
            inside = [i for i in items if i.start in window and i.end - 1 in window]
            if inside:
                chosen[kind] = inside
        return chosen


__all__ = ["EngineSteps", "Sequence"]
