"""LMDeploy chat templates that render the plugin's Jinja templates for the Intern-S1 family.

LMDeploy picks a chat template by asking each entry of its `MODELS` registry, in order, whether
it `match`es the model path; the first yes wins, and its catch-all `hf` entry renders the
checkpoint's own template. The published Intern-S1 template treats `enable_thinking=None` as
off and renders content parts its own way, so `register.register_chat_templates` puts these
entries first. They render through the tokenizer's `apply_chat_template`, the same renderer vLLM
uses, so both engines turn the same messages into the same text.

Thinking: LMDeploy folds the request's top-level `enable_thinking` into `chat_template_kwargs`
only when it is not None; the template itself also reads None as "not given", i.e. thinking on.
An explicit `--chat-template` other than these names is left alone; with
`INTERNS1_PLUGIN_KEEP_CHECKPOINT_CHAT_TEMPLATE=1` these entries render the checkpoint's own
template, as on vLLM.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from lmdeploy.model import HFChatTemplate

from interns1_plugin.chat_templates.defaults import use_plugin_template
from interns1_plugin.lmdeploy.checkpoint import (
    INTERNS1_ARCHITECTURES,
    INTERNS1_PRO_ARCHITECTURES,
    architecture,
    load_tokenizer,
)


class InternS1ChatTemplate(HFChatTemplate):
    """Intern-S1 / mini: the plugin's `interns1` template over the plugin's tokenizer.

    LMDeploy's `HFChatTemplate` loads the tokenizer with the server's `trust_remote_code`; this
    one always loads it without remote code and swaps in the plugin's template, then reuses
    `HFChatTemplate.messages2prompt` (generation prompt, assistant prefill, None kwargs dropped).
    """

    #: Registry name, usable with `--chat-template`.
    name: ClassVar[str] = "intern-s1"
    template_name: ClassVar[str] = "interns1"
    architectures: ClassVar[tuple[str, ...]] = INTERNS1_ARCHITECTURES

    def __init__(
        self, model_path: str = "", trust_remote_code: bool = False, **kwargs: Any
    ) -> None:
        # `trust_remote_code` is accepted because LMDeploy passes it, and ignored on purpose.
        if not model_path:
            raise ValueError(f"chat template {self.name!r} needs the model path")
        self.model_path = model_path
        self.tokenizer = load_tokenizer(model_path)
        use_plugin_template(self.tokenizer, self.template_name)
        # The markers LMDeploy reads off an HF template (`assistant_end` trims a prefill).
        self.user_start, self.user_end, _, _ = self._user_instruction()
        self.assistant_start, self.assistant_end, _, _ = self._assistant_instruction()
        eos = getattr(self.tokenizer, "eos_token", None)
        self.stop_words = [eos] if eos else []
        self.is_gpt_oss = False

    @classmethod
    def match(cls, model_path: str, **kwargs: Any) -> bool:
        """A local checkpoint directory whose config names one of `architectures`."""
        if not model_path or not os.path.isdir(model_path):
            return False
        return architecture(model_path) in cls.architectures


class InternS1ProChatTemplate(InternS1ChatTemplate):
    """Intern-S1-Pro: the plugin's `interns1_pro` template (Qwen tool calls, time series)."""

    name: ClassVar[str] = "intern-s1-pro"
    template_name: ClassVar[str] = "interns1_pro"
    architectures: ClassVar[tuple[str, ...]] = INTERNS1_PRO_ARCHITECTURES


#: Registered in this order, ahead of LMDeploy's own entries.
CHAT_TEMPLATES: tuple[type[InternS1ChatTemplate], ...] = (
    InternS1ChatTemplate,
    InternS1ProChatTemplate,
)

__all__ = ["CHAT_TEMPLATES", "InternS1ChatTemplate", "InternS1ProChatTemplate"]
