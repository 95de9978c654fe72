"""vLLM's real OpenAI chat handler over a scripted engine: no weights, no engine process.

`OpenAIServingChat` is built the way vLLM's `init_app_state` builds it (models registry, online
renderer, parser names), over a real `HfRenderer` for a tiny checkpoint directory that holds only
`config.json` and tokenizer files. Only the engine client is fake: it replays a scripted output
in whatever `RequestOutputKind` the handler asks for, so the parsers are driven by the same code
path as in a served request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("vllm")

from interns1_plugin import formats  # noqa: E402

if TYPE_CHECKING:
    from vllm.config import VllmConfig
    from vllm.entrypoints.openai.chat_completion.serving import OpenAIServingChat
    from vllm.outputs import RequestOutput
    from vllm.renderers import BaseRenderer
    from vllm.sampling_params import SamplingParams

MODEL_NAME = "intern-s1-tiny"

#: Special in the real Intern-S1 tokenizer, so `skip_special_tokens` would drop them.
SPECIAL_TOKENS = (
    formats.IM_START,
    formats.IM_END,
    formats.ENDOFTEXT,
    formats.ACTION_START,
    formats.ACTION_END,
    formats.PLUGIN,
)
#: Added but not special, as in the real tokenizer: they survive detokenization.
PLAIN_ADDED_TOKENS = (
    formats.THINK_START,
    formats.THINK_END,
    formats.TOOL_CALL_START,
    formats.TOOL_CALL_END,
)

#: ChatML with the Intern-S1 rule for the generation prompt: open `<think>` unless told not to.
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{{ '<|im_start|>' + m['role'] + '\\n' + (m['content'] or '') + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% if enable_thinking is not false %}{{ '<think>' }}{% endif %}"
    "{% endif %}"
)


def write_tiny_checkpoint(directory: Path) -> Path:
    """A Qwen3 `config.json` plus a byte-level BPE tokenizer: enough for vLLM to render prompts.

    No weights: nothing on the serving side loads them. Byte tokens cover any text, so the
    scripted engine can report real token ids for every delta.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    backend = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=formats.IM_END,
        pad_token=formats.ENDOFTEXT,
        additional_special_tokens=list(SPECIAL_TOKENS),
    )
    tokenizer.add_tokens(list(PLAIN_ADDED_TOKENS))
    tokenizer.chat_template = CHAT_TEMPLATE
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(directory)
    config = {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 32,
        "max_position_embeddings": 4096,
        "bos_token_id": tokenizer.convert_tokens_to_ids(formats.ENDOFTEXT),
        "eos_token_id": tokenizer.convert_tokens_to_ids(formats.IM_END),
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    return directory


@dataclass
class EngineCall:
    """What the handler handed to `generate`, kept so tests can check the request wiring."""

    prompt: Any
    sampling_params: SamplingParams
    kwargs: dict[str, Any]


@dataclass
class ScriptedEngineClient:
    """The slice of `EngineClient` that `OpenAIServingChat` touches, with a scripted `generate`.

    `script` is the model output split into the deltas the engine would emit; `generate` honours
    the request's `output_kind` like vLLM's output processor: one output per delta (DELTA), the
    running text (CUMULATIVE), or only the finished text (FINAL_ONLY). Text never contains the
    eos token but the last token ids do, as when the detokenizer stops on eos.
    """

    vllm_config: VllmConfig
    renderer: BaseRenderer
    script: list[str] = field(default_factory=list)
    calls: list[EngineCall] = field(default_factory=list)
    errored: bool = False
    input_processor: Any = None

    @property
    def model_config(self) -> Any:
        return self.vllm_config.model_config

    @property
    def dead_error(self) -> BaseException:
        return RuntimeError("the scripted engine never dies")

    def check_admission(self, n: int = 1, request_id: str | None = None) -> None:
        """Accept everything, as an engine without admission control does."""

    async def generate(
        self,
        prompt: Any,
        sampling_params: SamplingParams,
        request_id: str,
        **kwargs: Any,
    ) -> AsyncGenerator[RequestOutput, None]:
        from vllm.outputs import CompletionOutput, RequestOutput
        from vllm.sampling_params import RequestOutputKind

        self.calls.append(EngineCall(prompt, sampling_params, kwargs))
        tokenizer = self.renderer.get_tokenizer()
        eos_id = tokenizer.convert_tokens_to_ids(formats.IM_END)
        pieces = self.script or [""]
        kind = sampling_params.output_kind
        if kind == RequestOutputKind.FINAL_ONLY:
            pieces = ["".join(pieces)]
        text_so_far, ids_so_far = "", []
        for pos, piece in enumerate(pieces):
            last = pos == len(pieces) - 1
            ids = list(tokenizer.encode(piece, add_special_tokens=False))
            if last:
                ids.append(eos_id)
            text_so_far += piece
            ids_so_far += ids
            cumulative = kind != RequestOutputKind.DELTA
            output = CompletionOutput(
                index=0,
                text=text_so_far if cumulative else piece,
                token_ids=list(ids_so_far) if cumulative else ids,
                cumulative_logprob=None,
                logprobs=None,
                finish_reason="stop" if last else None,
            )
            yield RequestOutput(
                request_id=request_id,
                prompt=prompt.get("prompt"),
                prompt_token_ids=prompt["prompt_token_ids"],
                prompt_logprobs=None,
                outputs=[output],
                finished=last,
            )


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("intern-s1-tiny"))


@pytest.fixture(scope="session")
def vllm_config(tiny_checkpoint: Path) -> VllmConfig:
    from vllm.config import ModelConfig, VllmConfig
    from vllm.plugins import load_general_plugins

    # What every vLLM process does at start: the entry point registers the `intern-s1` parsers.
    load_general_plugins()
    model_config = ModelConfig(model=str(tiny_checkpoint), served_model_name=MODEL_NAME)
    return VllmConfig(model_config=model_config)


@pytest.fixture(scope="session")
def renderer(vllm_config: VllmConfig) -> BaseRenderer:
    from vllm.renderers.registry import renderer_from_config

    return renderer_from_config(vllm_config)


@dataclass
class Served:
    """A chat handler, the scripted engine behind it and the model name requests must use."""

    serving: OpenAIServingChat
    engine: ScriptedEngineClient
    model_name: str = MODEL_NAME


@pytest.fixture(scope="session")
def make_serving(vllm_config: VllmConfig, renderer: BaseRenderer) -> Callable[..., Served]:
    """Build a handler as `init_app_state` does for `vllm serve` with the given flags.

    Defaults are `--enable-auto-tool-choice --tool-call-parser intern-s1 --reasoning-parser
    intern-s1`; keyword arguments override them, or set another flag that both the renderer and
    the handler take (e.g. `exclude_tools_when_tool_choice_none`).
    """
    from vllm.entrypoints.openai.chat_completion.serving import OpenAIServingChat
    from vllm.entrypoints.openai.models.protocol import BaseModelPath
    from vllm.entrypoints.openai.models.serving import OpenAIServingModels
    from vllm.renderers.online_renderer import OnlineRenderer

    def build(**flags: Any) -> Served:
        parser_flags: dict[str, Any] = {
            "enable_auto_tools": True,
            "tool_parser": formats.PARSER_NAME,
            "reasoning_parser": formats.PARSER_NAME,
            **flags,
        }
        engine = ScriptedEngineClient(vllm_config=vllm_config, renderer=renderer)
        models = OpenAIServingModels(
            engine_client=engine,  # type: ignore[arg-type]
            base_model_paths=[BaseModelPath(name=MODEL_NAME, model_path=engine.model_config.model)],
        )
        online_renderer = OnlineRenderer(
            model_config=engine.model_config,
            renderer=renderer,
            request_logger=None,
            chat_template=None,
            chat_template_content_format="auto",
            **parser_flags,
        )
        online_renderer.warmup()
        serving = OpenAIServingChat(
            engine,  # type: ignore[arg-type]
            models,
            "assistant",
            online_renderer=online_renderer,
            request_logger=None,
            chat_template=None,
            chat_template_content_format="auto",
            **parser_flags,
        )
        return Served(serving, engine)

    return build
