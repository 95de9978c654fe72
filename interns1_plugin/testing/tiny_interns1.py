"""Tiny Intern-S1-shaped checkpoints on disk, for tests, demos and benchmarks without real weights.

Two variants mirror the two published models at toy widths:

- `mini`: Qwen3 (dense) text model + InternViT with LayerNorm, attention bias, no qk-norm
  (Intern-S1-mini's InternViT-300M);
- `s1`: Qwen3-MoE text model with a few experts + InternViT with RMSNorm and qk-norm over the full
  hidden size, no attention bias (Intern-S1's InternViT-6B).

Everything an engine reads is real: `config.json` keys as published (legacy `rope_theta`,
`num_experts`, `torch_dtype`, `tie_word_embeddings` inside `text_config`), tensor names as in the
published safetensors (`model.language_model.*`, `lm_head.*`, `model.vision_tower.*`,
`model.multi_modal_projector.*`, per-expert MoE tensors), sharded with an index, processor and
generation configs, the plugin's chat template. Tiles stay 448 pixels with 14-pixel patches, so
one tile is still 256 tokens; head_dim is 32 so CPU attention kernels accept it.

Weights are seeded random values scaled to keep activations finite in bfloat16 and float32, and
chosen so implementation mistakes show in the logits: layer scales far from 1, norm weights far
from identity, LayerNorm inputs with a large mean, biases well away from zero, and q/k heads of
different magnitudes (so a per-head qk-norm differs from the full-width one).

The tokenizer is written by one replaceable function (`write_byte_level_tokenizer`); pass another
`tokenizer_writer` to ship a different tokenizer with the same weights layout.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from interns1_plugin.formats import (
    ACTION_END,
    ACTION_START,
    ENDOFTEXT,
    IM_END,
    IM_START,
    IMAGE_PAD,
    IMAGE_SEQ_LENGTH,
    IMG_CONTEXT,
    IMG_END,
    IMG_START,
    INTERPRETER,
    IUPAC_END,
    IUPAC_START,
    PLUGIN,
    QWEN_ADDED_TOKENS,
    SELFIES_END,
    SELFIES_START,
    SMILES_END,
    SMILES_START,
    THINK_END,
    THINK_START,
    TOOL_CALL_END,
    TOOL_CALL_START,
    TOOL_RESPONSE_END,
    TOOL_RESPONSE_START,
    VIDEO_PAD,
    VIDEO_PLACEHOLDER,
    VISION_END,
    VISION_START,
)

if TYPE_CHECKING:  # heavy libraries load only when a checkpoint is built
    import torch

# --- shapes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TinyVariant:
    """Widths and switches of one tiny checkpoint; the booleans are the real model's."""

    name: str
    text_model_type: str
    norm_type: str
    attention_bias: bool
    use_qk_norm: bool
    temperature: float
    text_hidden: int = 64
    text_layers: int = 2
    text_heads: int = 2
    text_kv_heads: int = 1
    head_dim: int = 32
    text_intermediate: int = 128
    num_experts: int = 4
    experts_per_token: int = 2
    moe_intermediate: int = 64
    vision_hidden: int = 64
    vision_layers: int = 2
    vision_heads: int = 2
    vision_intermediate: int = 128
    image_size: int = 448
    patch_size: int = 14
    max_position_embeddings: int = 8192

    @property
    def is_moe(self) -> bool:
        return self.text_model_type == "qwen3_moe"

    @property
    def projector_width(self) -> int:
        """Vision width after the 0.5 pixel shuffle: four patches side by side."""
        return self.vision_hidden * 4

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


MINI = TinyVariant(
    name="mini",
    text_model_type="qwen3",
    norm_type="layer_norm",
    attention_bias=True,
    use_qk_norm=False,
    temperature=0.8,
)
S1 = TinyVariant(
    name="s1",
    text_model_type="qwen3_moe",
    norm_type="rms_norm",
    attention_bias=False,
    use_qk_norm=True,
    temperature=0.7,
)
VARIANTS: dict[str, TinyVariant] = {MINI.name: MINI, S1.name: S1}

_VOCAB_MULTIPLE = 64
_FP8_BLOCK = 128
_FP8_MAX = 448.0  # largest finite float8_e4m3fn value


def fp8_variant(variant: TinyVariant) -> TinyVariant:
    """`variant` at the widths block-FP8 (128x128) accepts; what `fp8=True` builds.

    vLLM requires every shard of a fused q/k/v or gate/up projection but the last to fill whole
    128-row blocks, the fused-MoE gate/up width to be a multiple of 128, and the GPU kernels
    quantize activations in groups of 128 along the hidden size. So the FP8 variant has a
    128-wide hidden size, 4 query and 4 key/value heads of 32 and 128-wide MLPs; the ViT and
    the vocabulary keep their widths (they stay unquantized). Build a non-FP8 checkpoint from
    the returned variant to get the same weights in bfloat16 or float32.
    """
    block = _FP8_BLOCK
    return replace(
        variant,
        text_hidden=block,
        text_heads=block // variant.head_dim,
        text_kv_heads=block // variant.head_dim,
        text_intermediate=block,
        moe_intermediate=block,
    )


# --- tokenizer -------------------------------------------------------------------------------

#: Added tokens in the order of the real vocabulary, with the real `special` flags: Qwen's own
#: added tokens, the scientific span tags, then Intern-S1's vision and action tokens.
ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    (ENDOFTEXT, True),
    (IM_START, True),
    (IM_END, True),
    (VISION_START, True),
    (VISION_END, True),
    (IMAGE_PAD, True),
    (VIDEO_PAD, True),
    (TOOL_CALL_START, False),
    (TOOL_CALL_END, False),
    (TOOL_RESPONSE_START, False),
    (TOOL_RESPONSE_END, False),
    (THINK_START, False),
    (THINK_END, False),
    (SMILES_START, True),
    (SMILES_END, True),
    (SELFIES_START, True),
    (SELFIES_END, True),
    (IUPAC_START, True),
    (IUPAC_END, True),
    (IMG_START, True),
    (IMG_END, True),
    (IMG_CONTEXT, True),
    (ACTION_START, True),
    (ACTION_END, True),
    (INTERPRETER, True),
    (PLUGIN, True),
    (VIDEO_PLACEHOLDER, True),
)

#: Named tokens transformers' InternVL processor and LMDeploy read off the tokenizer
#: (`tokenizer.context_image_token_id`, ...).
VISION_TOKEN_ATTRIBUTES: dict[str, str] = {
    "context_image_token": IMG_CONTEXT,
    "start_image_token": IMG_START,
    "end_image_token": IMG_END,
    "video_token": VIDEO_PLACEHOLDER,
}


class TokenizerFiles(NamedTuple):
    """What the checkpoint builder needs to know about the tokenizer it wrote."""

    size: int
    token_ids: Mapping[str, int]


#: Writes tokenizer files into a directory and reports their size and the ids of named tokens.
TokenizerWriter = Callable[[Path], TokenizerFiles]


def _byte_characters() -> list[str]:
    """The byte-level BPE alphabet in byte order: printable bytes map to themselves, the rest
    to the code points from 256 upwards, so byte `b` gets token id `b`."""
    printable = set(range(0x21, 0x7F)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    characters, shifted = [], 0
    for byte in range(256):
        if byte in printable:
            characters.append(chr(byte))
        else:
            characters.append(chr(256 + shifted))
            shifted += 1
    return characters


def write_byte_level_tokenizer(out: Path) -> TokenizerFiles:
    """A byte-level BPE (`tokenizer.json`, no merges) carrying Intern-S1's added tokens.

    Stands in for the dynamic tokenizer: same special tokens and flags, loadable as
    `PreTrainedTokenizerFast` by every engine.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    vocab = {char: index for index, char in enumerate(_byte_characters())}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    for content, special in ADDED_TOKENS:
        token = AddedToken(content, special=special, normalized=False)
        if special:
            tokenizer.add_special_tokens([token])
        else:
            tokenizer.add_tokens([token])
    tokenizer.save(str(out / "tokenizer.json"))

    specials = [content for content, special in ADDED_TOKENS if special]
    _write_json(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "add_bos_token": False,
            "add_prefix_space": False,
            "bos_token": None,
            "eos_token": IM_END,
            "pad_token": ENDOFTEXT,
            "unk_token": None,
            "clean_up_tokenization_spaces": False,
            "split_special_tokens": False,
            "model_max_length": 32768,
            "additional_special_tokens": [t for t in specials if t not in (ENDOFTEXT, IM_END)],
            "extra_special_tokens": VISION_TOKEN_ATTRIBUTES,
        },
    )
    _write_json(
        out / "special_tokens_map.json",
        {"eos_token": IM_END, "pad_token": ENDOFTEXT},
    )
    ids = {content: tokenizer.token_to_id(content) for content, _ in ADDED_TOKENS}
    return TokenizerFiles(size=tokenizer.get_vocab_size(with_added_tokens=True), token_ids=ids)


#: Merges for the dynamic tokenizer's BPE: enough to give multi-byte and multi-character pieces.
_DYNAMIC_MERGES: tuple[tuple[str, str], ...] = (
    ("Ġ", "t"),
    ("h", "e"),
    ("Ġt", "he"),
    ("i", "n"),
    ("Ġ", "a"),
    ("e", "r"),
    ("ä", "¸"),  # the first two bytes of many CJK characters: a piece that splits a character
    ("ð", "Ł"),  # likewise for emoji
)

#: The dynamic tokenizer's size counts all 26 Qwen slots, so all are filled.
_QWEN_SLOTS: tuple[str, ...] = QWEN_ADDED_TOKENS

#: Training text for the sub-models: enough for SentencePiece to find a few multi-character pieces.
_SUB_MODEL_CORPORA: dict[str, tuple[str, ...]] = {
    "SMILES": (
        "CC(=O)Oc1ccccc1C(=O)O",
        "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
        "C1=CC=C(C=C1)O",
        "CCO",
        "OC(=O)CCc1ccccc1",
        "c1ccc2ccccc2c1",
        "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
        "[Na+].[Cl-]",
        "N[C@@H](C)C(=O)O",
    ),
    "IUPAC": (
        "2-acetyloxybenzoic acid",
        "1,3,7-trimethylpurine-2,6-dione",
        "ethanol",
        "propan-2-ol",
        "3-phenylpropanoic acid",
        "2-methylpropanoic acid",
        "naphthalene",
    ),
    "FASTA": (
        "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ",
        "MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHF",
        "GSHMSLFDFFKNKGSAAATPPRRSRLLRRSRSS",
    ),
}

#: Size of each trained sub-model (SentencePiece may stop short of it).
_SUB_MODEL_SIZES: dict[str, int] = {"SMILES": 60, "IUPAC": 60, "FASTA": 30}


def _train_sub_model(name: str) -> bytes:
    """A tiny SentencePiece BPE model with the real sub-models' settings (unknown piece at id 0,
    identity normalisation, no dummy prefix, digits split for SMILES)."""
    import io

    import sentencepiece as spm

    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_SUB_MODEL_CORPORA[name] * 4),
        model_writer=writer,
        model_type="bpe",
        vocab_size=_SUB_MODEL_SIZES[name],
        hard_vocab_limit=False,
        character_coverage=1.0,
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        split_digits=name == "SMILES",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
        num_threads=1,
    )
    return writer.getvalue()


def write_dynamic_tokenizer(out: Path) -> TokenizerFiles:
    """Files for the real dynamic tokenizer (`InternS1Tokenizer`) at toy size.

    A byte-level BPE with a few merges, three SentencePiece sub-models trained here (so no outside
    files are needed), and Intern-S1's added tokens placed as the published layout places them:
    Qwen's tokens in the slots after the BPE vocabulary, the span tags where the layout puts them,
    every other added token after the sub-models. The ids are read back from the saved files.
    """
    from interns1_plugin.tokenizer import InternS1Tokenizer, register_with_transformers
    from interns1_plugin.tokenizer.layout import (
        MERGES_FILE,
        RESERVED_QWEN_SLOTS,
        SUB_MODELS,
        VOCAB_FILE,
        compute_layout,
    )

    characters = _byte_characters()
    vocab = {char: index for index, char in enumerate(characters)}
    for left, right in _DYNAMIC_MERGES:
        vocab.setdefault(left + right, len(vocab))
    _write_json(out / VOCAB_FILE, vocab)
    merges = "".join(f"{left} {right}\n" for left, right in _DYNAMIC_MERGES)
    (out / MERGES_FILE).write_text("#version: 0.2\n" + merges, encoding="utf-8")

    sizes = []
    for model in SUB_MODELS:
        data = _train_sub_model(model.name)
        (out / model.filename).write_bytes(data)
        import sentencepiece as spm

        sizes.append(spm.SentencePieceProcessor(model_proto=data).get_piece_size())
    layout = compute_layout(len(vocab), sizes)

    if len(_QWEN_SLOTS) != RESERVED_QWEN_SLOTS:
        raise ValueError("the Qwen slots must all be filled, or ids run past the size")
    ids: dict[str, int] = {content: len(vocab) + k for k, content in enumerate(_QWEN_SLOTS)}
    ids.update(layout.tag_ids)
    for content, _ in ADDED_TOKENS:
        if content not in ids:
            ids[content] = max(layout.fixed_end, max(ids.values()) + 1)
    special = {content: True for content in _QWEN_SLOTS} | dict(ADDED_TOKENS)
    decoder = {
        str(index): {
            "content": content,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": special.get(content, True),
        }
        for content, index in sorted(ids.items(), key=lambda item: item[1])
    }
    specials = [content for content, flag in ADDED_TOKENS if flag]
    _write_json(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": InternS1Tokenizer.__name__,
            "added_tokens_decoder": decoder,
            "add_bos_token": False,
            "add_prefix_space": False,
            "bos_token": None,
            "eos_token": IM_END,
            "pad_token": ENDOFTEXT,
            "unk_token": None,
            "errors": "replace",
            "clean_up_tokenization_spaces": False,
            "split_special_tokens": False,
            "model_max_length": 32768,
            "additional_special_tokens": [t for t in specials if t not in (ENDOFTEXT, IM_END)],
            "extra_special_tokens": VISION_TOKEN_ATTRIBUTES,
        },
    )
    _write_json(out / "special_tokens_map.json", {"eos_token": IM_END, "pad_token": ENDOFTEXT})

    register_with_transformers()
    loaded = InternS1Tokenizer.from_pretrained(str(out))
    read = {content: loaded.convert_tokens_to_ids(content) for content in ids}
    if read != ids:
        moved = {k: (ids[k], read[k]) for k in ids if read[k] != ids[k]}
        raise ValueError(f"the tokenizer placed added tokens elsewhere: {moved}")
    return TokenizerFiles(size=len(loaded), token_ids=read)


# --- configs -------------------------------------------------------------------------------


def text_config(variant: TinyVariant, vocab_size: int, bos_id: int, eos_id: int) -> dict:
    """A `qwen3` / `qwen3_moe` text config with the keys (and legacy names) published."""
    config: dict[str, Any] = {
        "architectures": ["Qwen3MoeForCausalLM" if variant.is_moe else "Qwen3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "head_dim": variant.head_dim,
        "hidden_act": "silu",
        "hidden_size": variant.text_hidden,
        "initializer_range": 0.02,
        "intermediate_size": variant.text_intermediate,
        "max_position_embeddings": variant.max_position_embeddings,
        "max_window_layers": variant.text_layers,
        "model_type": variant.text_model_type,
        "num_attention_heads": variant.text_heads,
        "num_hidden_layers": variant.text_layers,
        "num_key_value_heads": variant.text_kv_heads,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": vocab_size,
    }
    if variant.is_moe:
        config |= {
            "decoder_sparse_step": 1,
            "mlp_only_layers": [],
            "moe_intermediate_size": variant.moe_intermediate,
            "norm_topk_prob": True,
            "num_experts": variant.num_experts,
            "num_experts_per_tok": variant.experts_per_token,
            "output_router_logits": False,
            "router_aux_loss_coef": 0.001,
        }
    return config


def vision_config(variant: TinyVariant) -> dict:
    """An `interns1_vision` config with every key the published files carry."""
    return {
        "attention_bias": variant.attention_bias,
        "attention_dropout": 0.0,
        "drop_path_rate": 0.1,
        "dropout": 0.0,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "hidden_size": variant.vision_hidden,
        "image_size": [variant.image_size, variant.image_size],
        "initializer_factor": 0.1,
        "initializer_range": 1e-10,
        "intermediate_size": variant.vision_intermediate,
        "layer_norm_eps": 1e-06,
        "layer_scale_init_value": 0.1,
        "model_type": "interns1_vision",
        "norm_type": variant.norm_type,
        "num_attention_heads": variant.vision_heads,
        "num_channels": 3,
        "num_hidden_layers": variant.vision_layers,
        "patch_size": [variant.patch_size, variant.patch_size],
        "projection_dropout": 0.0,
        "torch_dtype": "bfloat16",
        "use_absolute_position_embeddings": True,
        "use_mask_token": False,
        "use_mean_pooling": True,
        "use_qk_norm": variant.use_qk_norm,
    }


#: The published `auto_map` (remote code the plugin replaces); written only on request.
HUB_AUTO_MAP = {
    "AutoConfig": "configuration_interns1.InternS1Config",
    "AutoModel": "modeling_interns1.InternS1Model",
    "AutoModelForCausalLM": "modeling_interns1.InternS1ForConditionalGeneration",
}


def model_config(
    variant: TinyVariant, tokens: TokenizerFiles, vocab_size: int, dtype: str
) -> dict[str, Any]:
    """The top-level `config.json` of an Intern-S1 checkpoint."""
    ids = tokens.token_ids
    text = text_config(variant, vocab_size, ids[ENDOFTEXT], ids[IM_END])
    text["torch_dtype"] = dtype
    vision = vision_config(variant)
    vision["torch_dtype"] = dtype
    return {
        "architectures": ["InternS1ForConditionalGeneration"],
        "downsample_ratio": 0.5,
        "image_seq_length": IMAGE_SEQ_LENGTH,
        "image_token_id": ids[IMG_CONTEXT],
        "model_type": "interns1",
        "projector_hidden_act": "gelu",
        "text_config": text,
        "torch_dtype": dtype,
        "vision_config": vision,
        "vision_feature_layer": -1,
        "vision_feature_select_strategy": "default",
    }


def preprocessor_config(variant: TinyVariant) -> dict[str, Any]:
    """`preprocessor_config.json` as published: GotOcr2 keys, `crop_to_patches` false."""
    return {
        "crop_size": None,
        "crop_to_patches": False,
        "data_format": "channels_first",
        "default_to_square": True,
        "device": None,
        "disable_grouping": None,
        "do_center_crop": None,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": [0.485, 0.456, 0.406],
        "image_processor_type": "GotOcr2ImageProcessorFast",
        "image_std": [0.229, 0.224, 0.225],
        "input_data_format": None,
        "max_patches": 12,
        "min_patches": 1,
        "processor_class": "InternS1Processor",
        "resample": 3,
        "rescale_factor": 1 / 255,
        "return_tensors": None,
        "size": {"height": variant.image_size, "width": variant.image_size},
    }


def video_preprocessor_config(variant: TinyVariant) -> dict[str, Any]:
    """`video_preprocessor_config.json` as published: InternVL keys, no frame sampling."""
    return {
        "crop_size": None,
        "data_format": "channels_first",
        "default_to_square": True,
        "device": None,
        "do_center_crop": None,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "do_sample_frames": False,
        "fps": None,
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
        "initial_shift": True,
        "input_data_format": None,
        "num_frames": None,
        "processor_class": "InternS1Processor",
        "resample": 3,
        "rescale_factor": 1 / 255,
        "return_metadata": False,
        "size": {"height": variant.image_size, "width": variant.image_size},
        "size_divisor": None,
        "video_metadata": None,
        "video_processor_type": "InternVLVideoProcessor",
    }


def generation_config(variant: TinyVariant, tokens: TokenizerFiles) -> dict[str, Any]:
    """The model card's sampling defaults with this tokenizer's bos / eos ids."""
    return {
        "bos_token_id": tokens.token_ids[ENDOFTEXT],
        "eos_token_id": tokens.token_ids[IM_END],
        "do_sample": True,
        "temperature": variant.temperature,
        "top_p": 1.0,
        "top_k": 50,
        "min_p": 0.0,
    }


def fp8_quantization_config(variant: TinyVariant) -> dict[str, Any]:
    """Block-wise FP8 (128x128, e4m3, dynamic activations) as the FP8 repositories declare it.

    Only the language model's linear layers are quantized; the vision tower, the projector,
    the MoE router and `lm_head` stay in the checkpoint's dtype.
    """
    skipped = ["model.vision_tower", "model.multi_modal_projector", "lm_head"]
    if variant.is_moe:
        skipped.append("mlp.gate")
    return {
        "activation_scheme": "dynamic",
        "fmt": "e4m3",
        "quant_method": "fp8",
        "weight_block_size": [_FP8_BLOCK, _FP8_BLOCK],
        "modules_to_not_convert": skipped,
    }


# --- weights -----------------------------------------------------------------------------------


class _Random:
    """Seeded draws in float32, so a checkpoint is the same bytes for the same seed."""

    def __init__(self, seed: int) -> None:
        import torch

        self.torch = torch
        self.gen = torch.Generator().manual_seed(seed)

    def normal(self, *shape: int, std: float = 1.0, mean: float = 0.0) -> torch.Tensor:
        return self.torch.randn(*shape, generator=self.gen) * std + mean

    def uniform(self, *shape: int, low: float, high: float) -> torch.Tensor:
        return self.torch.rand(*shape, generator=self.gen) * (high - low) + low

    def linear(self, out_features: int, in_features: int) -> torch.Tensor:
        return self.normal(out_features, in_features, std=in_features**-0.5)

    def norm_weight(self, width: int) -> torch.Tensor:
        """Far from identity: a wrong or missing norm changes the output."""
        return self.uniform(width, low=0.5, high=1.5)


def _vision_tensors(variant: TinyVariant, rnd: _Random) -> dict[str, torch.Tensor]:
    width, inner = variant.vision_hidden, variant.vision_intermediate
    heads, head_dim = variant.vision_heads, variant.vision_hidden // variant.vision_heads
    patch = variant.patch_size
    p = "model.vision_tower."
    tensors = {
        p + "embeddings.cls_token": rnd.normal(1, 1, width),
        # A large shared offset: LayerNorm removes it, RMSNorm does not.
        p + "embeddings.position_embeddings": rnd.normal(
            1, variant.num_patches + 1, width, std=0.3, mean=1.0
        ),
        p + "embeddings.patch_embeddings.projection.weight": rnd.normal(
            width, 3, patch, patch, std=(3 * patch * patch) ** -0.5
        ),
        p + "embeddings.patch_embeddings.projection.bias": rnd.normal(width, std=0.1),
    }
    # Heads of different magnitudes: a per-head qk-norm then differs from the full-width one.
    head_scale = rnd.torch.linspace(0.1, 4.0, heads).repeat_interleave(head_dim).unsqueeze(1)
    for layer in range(variant.vision_layers):
        q = f"{p}encoder.layer.{layer}."
        for name in ("q_proj", "k_proj", "v_proj"):
            weight = rnd.linear(width, width)
            tensors[q + f"attention.{name}.weight"] = (
                weight * head_scale if name != "v_proj" else weight
            )
            if variant.attention_bias:
                tensors[q + f"attention.{name}.bias"] = rnd.normal(width, std=1.0)
        if variant.use_qk_norm:  # large gains: sharp attention, so the norm's extent matters
            tensors[q + "attention.q_norm.weight"] = rnd.uniform(width, low=2.0, high=4.0)
            tensors[q + "attention.k_norm.weight"] = rnd.uniform(width, low=2.0, high=4.0)
        tensors |= {
            q + "attention.projection_layer.weight": rnd.linear(width, width),
            q + "attention.projection_layer.bias": rnd.normal(width, std=0.3),
            q + "mlp.fc1.weight": rnd.linear(inner, width),
            q + "mlp.fc1.bias": rnd.normal(inner, std=0.3),
            q + "mlp.fc2.weight": rnd.linear(width, inner),
            q + "mlp.fc2.bias": rnd.normal(width, std=0.3),
            q + "lambda_1": rnd.uniform(width, low=0.2, high=0.6),
            q + "lambda_2": rnd.uniform(width, low=0.2, high=0.6),
        }
        for norm in ("layernorm_before", "layernorm_after"):
            tensors[q + f"{norm}.weight"] = rnd.norm_weight(width)
            if variant.norm_type == "layer_norm":
                tensors[q + f"{norm}.bias"] = rnd.normal(width, std=0.3)
    return tensors


def _projector_tensors(variant: TinyVariant, rnd: _Random) -> dict[str, torch.Tensor]:
    wide, hidden = variant.projector_width, variant.text_hidden
    p = "model.multi_modal_projector."
    return {
        p + "layer_norm.weight": rnd.norm_weight(wide),
        p + "layer_norm.bias": rnd.normal(wide, std=0.1),
        p + "linear_1.weight": rnd.linear(hidden, wide),
        p + "linear_1.bias": rnd.normal(hidden, std=0.1),
        p + "linear_2.weight": rnd.linear(hidden, hidden),
        p + "linear_2.bias": rnd.normal(hidden, std=0.1),
    }


def _text_tensors(variant: TinyVariant, rnd: _Random, vocab: int) -> dict[str, torch.Tensor]:
    hidden, head_dim = variant.text_hidden, variant.head_dim
    q_width, kv_width = variant.text_heads * head_dim, variant.text_kv_heads * head_dim
    p = "model.language_model."
    tensors = {
        p + "embed_tokens.weight": rnd.normal(vocab, hidden),
        p + "norm.weight": rnd.norm_weight(hidden),
    }
    for layer in range(variant.text_layers):
        q = f"{p}layers.{layer}."
        tensors |= {
            q + "input_layernorm.weight": rnd.norm_weight(hidden),
            q + "post_attention_layernorm.weight": rnd.norm_weight(hidden),
            q + "self_attn.q_proj.weight": rnd.linear(q_width, hidden),
            q + "self_attn.k_proj.weight": rnd.linear(kv_width, hidden),
            q + "self_attn.v_proj.weight": rnd.linear(kv_width, hidden),
            q + "self_attn.o_proj.weight": rnd.linear(hidden, q_width),
            q + "self_attn.q_norm.weight": rnd.norm_weight(head_dim),
            q + "self_attn.k_norm.weight": rnd.norm_weight(head_dim),
        }
        if variant.is_moe:
            tensors[q + "mlp.gate.weight"] = rnd.linear(variant.num_experts, hidden) * 4
            for expert in range(variant.num_experts):
                tensors |= _mlp(f"{q}mlp.experts.{expert}.", hidden, variant.moe_intermediate, rnd)
        else:
            tensors |= _mlp(q + "mlp.", hidden, variant.text_intermediate, rnd)
    tensors["lm_head.weight"] = rnd.linear(vocab, hidden)
    return tensors


def _mlp(prefix: str, hidden: int, inner: int, rnd: _Random) -> dict[str, torch.Tensor]:
    return {
        prefix + "gate_proj.weight": rnd.linear(inner, hidden),
        prefix + "up_proj.weight": rnd.linear(inner, hidden),
        prefix + "down_proj.weight": rnd.linear(hidden, inner),
    }


def checkpoint_tensors(
    variant: TinyVariant, vocab_size: int, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Every tensor of the checkpoint under its published name, float32."""
    rnd = _Random(seed)
    return {
        **_vision_tensors(variant, rnd),
        **_projector_tensors(variant, rnd),
        **_text_tensors(variant, rnd, vocab_size),
    }


_FP8_TARGETS = ("_proj.weight",)
_FP8_SKIPPED = ("model.vision_tower.", "model.multi_modal_projector.", "lm_head.")


def quantize_fp8_blocks(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Block-wise FP8 weights plus `<name>_scale_inv` (one float32 scale per 128x128 block)."""
    import torch

    out: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        if not name.endswith(_FP8_TARGETS) or name.startswith(_FP8_SKIPPED):
            out[name] = tensor
            continue
        rows, cols = tensor.shape
        blocks = (math.ceil(rows / _FP8_BLOCK), math.ceil(cols / _FP8_BLOCK))
        padded = torch.zeros(blocks[0] * _FP8_BLOCK, blocks[1] * _FP8_BLOCK)
        padded[:rows, :cols] = tensor.float()
        tiles = padded.view(blocks[0], _FP8_BLOCK, blocks[1], _FP8_BLOCK)
        scale = tiles.abs().amax(dim=(1, 3)).clamp(min=1e-12) / _FP8_MAX
        scaled = tiles / scale[:, None, :, None]
        out[name] = scaled.view_as(padded)[:rows, :cols].to(torch.float8_e4m3fn).contiguous()
        out[name + "_scale_inv"] = scale.contiguous()
    return out


# --- writing --------------------------------------------------------------------------------


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_shards(tensors: Mapping[str, torch.Tensor], out: Path, num_shards: int) -> None:
    """`model-0000k-of-0000n.safetensors` files of similar size plus the index JSON."""
    from safetensors.torch import save_file

    names = list(tensors)
    sizes = [tensors[n].numel() * tensors[n].element_size() for n in names]
    total = sum(sizes)
    num_shards = max(1, min(num_shards, len(names)))
    target = total / num_shards
    shards: list[list[str]] = [[]]
    filled = 0
    for name, size in zip(names, sizes, strict=True):
        if filled >= target * len(shards) and len(shards) < num_shards:
            shards.append([])
        shards[-1].append(name)
        filled += size
    weight_map = {}
    for index, shard in enumerate(shards, start=1):
        filename = f"model-{index:05d}-of-{len(shards):05d}.safetensors"
        save_file({n: tensors[n] for n in shard}, str(out / filename), metadata={"format": "pt"})
        weight_map |= dict.fromkeys(shard, filename)
    index_data = {"metadata": {"total_size": total}, "weight_map": weight_map}
    _write_json(out / "model.safetensors.index.json", index_data)


def _padded_vocab(size: int) -> int:
    return -(-size // _VOCAB_MULTIPLE) * _VOCAB_MULTIPLE


def build_tiny_interns1(
    out_dir: str | Path,
    variant: str | TinyVariant = "mini",
    *,
    seed: int = 0,
    dtype: str = "bfloat16",
    num_shards: int = 2,
    fp8: bool = False,
    with_auto_map: bool = False,
    tokenizer_writer: TokenizerWriter = write_byte_level_tokenizer,
    divisible_by: int = 1,
) -> Path:
    """Write a loadable tiny Intern-S1 checkpoint into `out_dir` and return its path.

    `variant` is "mini" or "s1" (or a `TinyVariant`). `fp8` stores the language model's linear
    weights block-quantized with a `quantization_config`, as the FP8 repositories do, at the
    widths of `fp8_variant(variant)`.
    `with_auto_map` adds the published `auto_map` (without its Python files) for tests of the
    remote-code paths. `divisible_by` rounds the head and expert counts up to multiples of it,
    so every one shards evenly over that many tensor-parallel ranks (1: the widths above).
    Output bytes are deterministic for the same arguments.
    """
    import torch

    from interns1_plugin.chat_templates import read_template

    spec = VARIANTS[variant] if isinstance(variant, str) else variant
    if fp8:
        spec = fp8_variant(spec)
    if divisible_by > 1:
        # At the default widths and 2 this changes only the text attention: 1 -> 2 key/value
        # heads and 2 -> 4 query heads (the query/key-value ratio stays 2). Experts (4) and
        # vision heads (2, of width 32) already divide; other divisors may change them too.
        kv_heads = -(-spec.text_kv_heads // divisible_by) * divisible_by
        group = spec.text_heads // spec.text_kv_heads
        vision_heads = -(-spec.vision_heads // divisible_by) * divisible_by
        if spec.vision_hidden % vision_heads:
            raise ValueError(f"{vision_heads} vision heads do not split {spec.vision_hidden}")
        spec = replace(
            spec,
            text_heads=kv_heads * group,
            text_kv_heads=kv_heads,
            num_experts=-(-spec.num_experts // divisible_by) * divisible_by,
            vision_heads=vision_heads,
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    tokens = tokenizer_writer(out)
    vocab_size = _padded_vocab(tokens.size)
    tensors = checkpoint_tensors(spec, vocab_size, seed)
    tensors = {name: t.to(getattr(torch, dtype)).contiguous() for name, t in tensors.items()}
    config = model_config(spec, tokens, vocab_size, dtype)
    if fp8:
        tensors = quantize_fp8_blocks(tensors)
        config["quantization_config"] = fp8_quantization_config(spec)
    if with_auto_map:
        config["auto_map"] = dict(HUB_AUTO_MAP)
    write_shards(tensors, out, num_shards)

    _write_json(out / "config.json", config)
    _write_json(out / "generation_config.json", generation_config(spec, tokens))
    _write_json(out / "preprocessor_config.json", preprocessor_config(spec))
    _write_json(out / "video_preprocessor_config.json", video_preprocessor_config(spec))
    _write_json(
        out / "processor_config.json",
        {"image_seq_length": IMAGE_SEQ_LENGTH, "processor_class": "InternS1Processor"},
    )
    (out / "chat_template.jinja").write_text(read_template("interns1"), encoding="utf-8")
    return out


__all__ = [
    "ADDED_TOKENS",
    "HUB_AUTO_MAP",
    "MINI",
    "S1",
    "VARIANTS",
    "VISION_TOKEN_ATTRIBUTES",
    "TinyVariant",
    "TokenizerFiles",
    "TokenizerWriter",
    "build_tiny_interns1",
    "checkpoint_tensors",
    "fp8_quantization_config",
    "fp8_variant",
    "generation_config",
    "model_config",
    "preprocessor_config",
    "quantize_fp8_blocks",
    "text_config",
    "video_preprocessor_config",
    "vision_config",
    "write_byte_level_tokenizer",
    "write_dynamic_tokenizer",
    "write_shards",
]
