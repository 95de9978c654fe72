"""What `InternS1Processor` and `InternS1ProProcessor` share as transformers processors.

Both take the plugin's own sub-processors whatever class names the checkpoint's files hold, load
the tokenizer with remote code off, expose the model's special tokens as attributes with their
ids (under the names engine glue written against transformers' processors reads), and tokenize
the expanded prompts the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from transformers import AutoTokenizer
from transformers.image_processing_utils import BaseImageProcessor
from transformers.processing_utils import ProcessorMixin
from transformers.video_processing_utils import VideoProcessorMixin

from interns1_plugin.chat_templates.defaults import use_plugin_template

#: Keys of the tokenizer's own call that the processor passes through.
TOKENIZER_KEYS = (
    "padding",
    "padding_side",
    "truncation",
    "max_length",
    "add_special_tokens",
    "return_attention_mask",
)
_SUB_PROCESSOR_BASES: dict[str, type] = {
    "image_processor": BaseImageProcessor,
    "video_processor": VideoProcessorMixin,
}


class LocalProcessorMixin(ProcessorMixin):
    """A `ProcessorMixin` that runs nothing from the checkpoint directory."""

    #: The plugin's chat template for this processor's models (see `use_plugin_template`).
    PLUGIN_CHAT_TEMPLATE: ClassVar[str]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, *args: Any, **kwargs: Any) -> Any:
        """transformers' loading, then the plugin's chat template over the checkpoint's."""
        processor = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        return use_plugin_template(processor, cls.PLUGIN_CHAT_TEMPLATE)

    def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> type:
        """Check sub-processors against their base classes directly.

        transformers finds these base classes by name in its top-level namespace, where
        `VideoProcessorMixin` is missing whenever torchvision is not installed.
        """
        expected = _SUB_PROCESSOR_BASES.get(argument_name)
        if expected is None:
            return super().check_argument_for_proper_class(argument_name, argument)
        if not isinstance(argument, expected):
            raise TypeError(f"{argument_name} must be a {expected.__name__}, got {type(argument)}")
        return expected

    def _set_special_tokens(self, tokenizer: Any, tokens: Mapping[str, str]) -> None:
        """Attribute `name` holding each token and `name_id` its id in `tokenizer`."""
        for name, token in tokens.items():
            setattr(self, name, token)
            setattr(self, f"{name}_id", tokenizer.convert_tokens_to_ids(token))

    @staticmethod
    def _load_tokenizer(path: Any, kwargs: dict[str, Any]) -> Any:
        """The tokenizer through AutoTokenizer, `trust_remote_code` forced off.

        The flag is also dropped from `kwargs`, which then load the sub-processors.
        """
        kwargs.pop("trust_remote_code", None)
        return AutoTokenizer.from_pretrained(path, trust_remote_code=False, **kwargs)

    def _tokenize(self, texts: list[str], return_tensors: str | None, kwargs: dict) -> Any:
        """The tokenizer's call on the expanded prompts; a batch pads on the left by default."""
        options = {key: kwargs[key] for key in TOKENIZER_KEYS if key in kwargs}
        if len(texts) > 1 and return_tensors is not None:
            options.setdefault("padding", True)
            options.setdefault("padding_side", "left")
        return self.tokenizer(texts, return_tensors=return_tensors, **options)


__all__ = ["TOKENIZER_KEYS", "LocalProcessorMixin"]
