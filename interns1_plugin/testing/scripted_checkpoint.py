"""A tiny Qwen3 checkpoint whose greedy output is a fixed script, for live end-to-end tests.

Real Intern-S1 weights are far too large for CI, yet the parsers are only proven by a running
engine emitting real token ids. This builds a 1-2 layer `Qwen3ForCausalLM` that any engine loads
as an ordinary checkpoint and that, under greedy decoding, "says" a scripted response.

How ("bigram script"): every attention `o_proj` and MLP `down_proj` is zero, so each layer adds
nothing to the residual stream and the final hidden state is the current token's embedding. The
logits therefore depend on the current token only. Each chain token gets an orthogonal
embedding, and the `lm_head` row of its successor points along that embedding, so the argmax
walks the chain: trigger -> segment 1 -> ... -> `<|im_end|>`. For the walk to be unambiguous each
chain element must be one token id and appear once; the tokenizer is therefore built for the
script: 256 byte tokens, the chat markers, and each segment as one added token.
"""

from __future__ import annotations

import importlib.resources
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from interns1_plugin.formats import (
    ACTION_END,
    ACTION_START,
    ENDOFTEXT,
    IM_END,
    IM_START,
    INTERPRETER,
    PLUGIN,
    THINK_END,
    THINK_START,
    TOOL_CALL_END,
    TOOL_CALL_START,
    TOOL_RESPONSE_END,
    TOOL_RESPONSE_START,
)

if TYPE_CHECKING:  # engine-side libraries are imported only when a checkpoint is built
    import torch
    from tokenizers import Tokenizer

#: Added tokens that are *special* in the real Intern-S1 tokenizer (dropped by skip_special_tokens).
SPECIAL_TOKENS: tuple[str, ...] = (
    ENDOFTEXT,
    IM_START,
    IM_END,
    ACTION_START,
    ACTION_END,
    PLUGIN,
    INTERPRETER,
)
#: Added tokens that are *not* special in the real tokenizer, so they survive detokenization.
PLAIN_ADDED_TOKENS: tuple[str, ...] = (
    THINK_START,
    THINK_END,
    TOOL_CALL_START,
    TOOL_CALL_END,
    TOOL_RESPONSE_START,
    TOOL_RESPONSE_END,
)

_BYTE_TOKENS = 256
_VOCAB_MULTIPLE = 64
_CHAIN_LOGIT = 30.0  # logit of the scripted successor; every other logit stays near 0
_NOISE_STD = 0.02


@dataclass(frozen=True)
class Script:
    """A scripted response: after `trigger` the model emits `segments` one token each.

    `trigger` is the last token of the prompt (`<think>` for the thinking-on generation prompt
    `<|im_start|>assistant\\n<think>`). `segments` must end with `<|im_end|>`, the eos. `template`
    names the packaged chat template the checkpoint ships with.
    """

    name: str
    trigger: str
    segments: tuple[str, ...]
    template: str = "interns1.jinja"

    def __post_init__(self) -> None:
        if not self.segments or self.segments[-1] != IM_END:
            raise ValueError(f"script {self.name!r} must end with {IM_END!r}")
        chain = self.chain
        if any(not element for element in chain):
            raise ValueError(f"script {self.name!r} has an empty element")
        duplicates = sorted({element for element in chain if chain.count(element) > 1})
        if duplicates:
            raise ValueError(f"script {self.name!r} repeats chain elements: {duplicates!r}")

    @property
    def chain(self) -> tuple[str, ...]:
        """Trigger followed by the segments: the token walk greedy decoding performs."""
        return (self.trigger, *self.segments)

    @property
    def text(self) -> str:
        """The decoded response with special tokens kept (`skip_special_tokens=False`)."""
        return "".join(self.segments)

    @property
    def served_text(self) -> str:
        """What an OpenAI server returns: the text without the final eos, which it strips."""
        return "".join(self.segments[:-1])


WEATHER_TOOL_CALL_SCRIPT = Script(
    name="scripted-weather",
    trigger=THINK_START,
    segments=(
        "I need the weather.",
        THINK_END,
        "\n\n",
        "Let me check.",
        ACTION_START,
        PLUGIN,
        '\n{"name": "get_weather", "parameters": {"city": "Tokyo"}}\n',
        ACTION_END,
        IM_END,
    ),
)

PRO_TOOL_CALL_SCRIPT = Script(
    name="scripted-weather-pro",
    trigger=THINK_START,
    segments=(
        "I need the weather.",
        THINK_END,
        "\n\n",
        "Let me check.",
        "\n",
        TOOL_CALL_START,
        '\n{"name": "get_weather", "arguments": {"city": "Tokyo"}}\n',
        TOOL_CALL_END,
        IM_END,
    ),
    template="interns1_pro.jinja",
)

ANSWER_SCRIPT = Script(
    name="scripted-answer",
    trigger=THINK_START,
    segments=(
        "The user greets me.",
        THINK_END,
        "\n\n",
        "Hello! How can I help you today?",
        IM_END,
    ),
)


def chatml_prompt(user: str, script: Script) -> str:
    """A one-turn ChatML prompt ending in the script's trigger, for raw `/v1/completions`."""
    prompt = f"{IM_START}user\n{user}{IM_END}\n{IM_START}assistant\n"
    return prompt if prompt.endswith(script.trigger) else prompt + script.trigger


def packaged_chat_template(name: str) -> str | None:
    """The text of a chat template shipped in `interns1_plugin.chat_templates`, if present."""
    try:
        path = importlib.resources.files("interns1_plugin.chat_templates").joinpath(name)
        return path.read_text(encoding="utf-8") if path.is_file() else None
    except (ModuleNotFoundError, FileNotFoundError):
        return None


def _byte_alphabet() -> list[str]:
    """GPT-2's byte -> printable character table, so byte i is token id i."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table: dict[int, str] = {b: chr(b) for b in printable}
    shifted = 0
    for byte in range(_BYTE_TOKENS):
        if byte not in table:
            table[byte] = chr(_BYTE_TOKENS + shifted)
            shifted += 1
    return [table[byte] for byte in range(_BYTE_TOKENS)]


def build_script_tokenizer(script: Script) -> Tokenizer:
    """Byte-level BPE without merges plus chat markers and one added token per segment.

    Raises ValueError when a segment would not come back unchanged from decoding (the
    byte-level decoder reinterprets added tokens made only of its alphabet, e.g. "é!").
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    vocab = {char: byte for byte, char in enumerate(_byte_alphabet())}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]
    )
    known = {*SPECIAL_TOKENS, *PLAIN_ADDED_TOKENS}
    extra = [e for e in script.chain if e not in known and len(e.encode("utf-8")) > 1]
    plain = [*PLAIN_ADDED_TOKENS, *dict.fromkeys(extra)]
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in plain])
    for element in script.chain:
        token_id = _single_id(tokenizer, element)
        if tokenizer.decode([token_id], skip_special_tokens=False) != element:
            raise ValueError(f"segment {element!r} does not survive byte-level decoding")
    return tokenizer


def _single_id(tokenizer: Tokenizer, element: str) -> int:
    """The one token id of a chain element (added token or single byte)."""
    token_id = tokenizer.token_to_id(element)
    if token_id is not None:
        return token_id
    ids = tokenizer.encode(element, add_special_tokens=False).ids
    if len(ids) != 1:
        raise ValueError(f"chain element {element!r} is {len(ids)} tokens, not one")
    return ids[0]


def script_token_ids(tokenizer: Tokenizer, script: Script) -> list[int]:
    """Token ids of the script's chain (trigger first) in the given tokenizer."""
    return [_single_id(tokenizer, element) for element in script.chain]


def _weights(
    chain_ids: list[int],
    *,
    vocab_size: int,
    hidden_size: int,
    intermediate_size: int,
    num_layers: int,
    num_heads: int,
    num_kv_heads: int,
    head_dim: int,
    seed: int,
    dtype: str,
) -> dict[str, torch.Tensor]:
    """Seeded Qwen3 tensors under their real names, wired so greedy decoding walks the chain."""
    import torch

    gen = torch.Generator().manual_seed(seed)

    def noise(*shape: int, std: float = _NOISE_STD) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64) * std

    sources, targets = chain_ids[:-1], chain_ids[1:]
    if len(sources) > hidden_size:
        raise ValueError(f"{len(sources)} chain steps need hidden_size >= {len(sources)}")
    embed = noise(vocab_size, hidden_size, std=1.0)
    # Orthonormal directions (scaled to RMS 1) keep each source's successor logit apart.
    basis, _ = torch.linalg.qr(torch.randn(hidden_size, len(sources), generator=gen).double())
    embed[sources] = basis.T * hidden_size**0.5
    lm_head = noise(vocab_size, hidden_size)
    for source, target in zip(sources, targets, strict=True):
        direction = embed[source] / embed[source].norm()  # == RMSNorm(embed) direction
        lm_head[target] = direction * (_CHAIN_LOGIT / hidden_size**0.5)

    tensors = {"model.embed_tokens.weight": embed, "model.norm.weight": torch.ones(hidden_size)}
    for layer in range(num_layers):
        p = f"model.layers.{layer}."
        tensors |= {
            p + "input_layernorm.weight": torch.ones(hidden_size),
            p + "post_attention_layernorm.weight": torch.ones(hidden_size),
            p + "self_attn.q_proj.weight": noise(num_heads * head_dim, hidden_size),
            p + "self_attn.k_proj.weight": noise(num_kv_heads * head_dim, hidden_size),
            p + "self_attn.v_proj.weight": noise(num_kv_heads * head_dim, hidden_size),
            p + "self_attn.o_proj.weight": torch.zeros(hidden_size, num_heads * head_dim),
            p + "self_attn.q_norm.weight": torch.ones(head_dim),
            p + "self_attn.k_norm.weight": torch.ones(head_dim),
            p + "mlp.gate_proj.weight": noise(intermediate_size, hidden_size),
            p + "mlp.up_proj.weight": noise(intermediate_size, hidden_size),
            p + "mlp.down_proj.weight": torch.zeros(hidden_size, intermediate_size),
        }
    tensors["lm_head.weight"] = lm_head
    torch_dtype = getattr(torch, dtype)
    return {name: t.to(torch_dtype).contiguous() for name, t in tensors.items()}


def bigram_tensors(
    chain_ids: list[int], *, vocab_size: int, hidden_size: int, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Float32 `embed_tokens`, final `norm` and `lm_head` that walk the chain (Qwen3 names).

    For other architectures built the same way: zero every layer's output projections and use
    these three tensors, and greedy decoding follows the script there too.
    """
    return _weights(
        chain_ids,
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=1,
        num_layers=0,
        num_heads=1,
        num_kv_heads=1,
        head_dim=1,
        seed=seed,
        dtype="float32",
    )


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def build_scripted_qwen3(
    out_dir: str | Path,
    script: Script,
    *,
    seed: int = 0,
    hidden_size: int = 64,
    num_layers: int = 1,
    num_heads: int = 2,
    num_kv_heads: int = 1,
    head_dim: int = 32,
    intermediate_size: int = 128,
    max_position_embeddings: int = 4096,
    dtype: str = "bfloat16",
    chat_template: str | None = None,
) -> Path:
    """Write a loadable Qwen3 checkpoint for `script` into `out_dir` and return its path.

    `head_dim` must be one vLLM's CPU attention supports (32, 64, 80, ...). `chat_template`
    defaults to the packaged template named by `script.template`, when that file exists.
    The output is byte-for-byte deterministic for a given script, seed and shape.
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_script_tokenizer(script)
    chain_ids = script_token_ids(tokenizer, script)
    vocab_size = -(-tokenizer.get_vocab_size(with_added_tokens=True) // _VOCAB_MULTIPLE)
    vocab_size *= _VOCAB_MULTIPLE
    bos_id, eos_id = tokenizer.token_to_id(ENDOFTEXT), tokenizer.token_to_id(IM_END)

    tensors = _weights(
        chain_ids,
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        head_dim=head_dim,
        seed=seed,
        dtype=dtype,
    )
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save(str(out / "tokenizer.json"))

    rope_theta = 1_000_000.0
    _write_json(
        out / "config.json",
        {
            "architectures": ["Qwen3ForCausalLM"],
            "model_type": "qwen3",
            "vocab_size": vocab_size,
            "hidden_size": hidden_size,
            "intermediate_size": intermediate_size,
            "num_hidden_layers": num_layers,
            "num_attention_heads": num_heads,
            "num_key_value_heads": num_kv_heads,
            "head_dim": head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": max_position_embeddings,
            "rms_norm_eps": 1e-6,
            "rope_theta": rope_theta,
            "rope_parameters": {"rope_type": "default", "rope_theta": rope_theta},
            "attention_bias": False,
            "attention_dropout": 0.0,
            "use_sliding_window": False,
            "sliding_window": None,
            "max_window_layers": num_layers,
            "tie_word_embeddings": False,
            "initializer_range": 0.02,
            "use_cache": True,
            "bos_token_id": bos_id,
            "eos_token_id": eos_id,
            "pad_token_id": bos_id,
            "dtype": dtype,
            "torch_dtype": dtype,
        },
    )
    _write_json(
        out / "generation_config.json",
        {
            "bos_token_id": bos_id,
            "eos_token_id": eos_id,
            "pad_token_id": bos_id,
            "do_sample": False,
        },
    )
    _write_json(
        out / "special_tokens_map.json",
        {
            "eos_token": IM_END,
            "pad_token": ENDOFTEXT,
            "additional_special_tokens": [t for t in SPECIAL_TOKENS if t not in (IM_END,)],
        },
    )
    template = (
        chat_template if chat_template is not None else packaged_chat_template(script.template)
    )
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": IM_END,
        "pad_token": ENDOFTEXT,
        "unk_token": None,
        "model_max_length": max_position_embeddings,
        "clean_up_tokenization_spaces": False,
        "add_prefix_space": False,
        "additional_special_tokens": [t for t in SPECIAL_TOKENS if t != IM_END],
    }
    if template is not None:
        tokenizer_config["chat_template"] = template
    _write_json(out / "tokenizer_config.json", tokenizer_config)
    return out
