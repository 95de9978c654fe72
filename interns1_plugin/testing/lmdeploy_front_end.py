"""LMDeploy's API-server preprocessing for a checkpoint, without an engine behind it.

What `lmdeploy serve api_server` builds before the engine: the vision encoder LMDeploy's builder
picks (the plugin's, through the import hook), the chat template and the multimodal processor.
`prompt_input` returns what the server hands the engine for a chat request: `input_ids` and the
`multimodal` items the PyTorch engine's input processor receives.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any


class LMDeployFrontEnd:
    """The server's vision encoder, chat template and multimodal processor for one checkpoint."""

    def __init__(self, model_path: str | os.PathLike) -> None:
        from lmdeploy.model import get_chat_template
        from lmdeploy.serve.processors import MultimodalProcessor
        from lmdeploy.tokenizer import Tokenizer
        from lmdeploy.vl.engine import ImageEncoder

        path = os.fspath(model_path)
        self.encoder = ImageEncoder(path, "pytorch")
        self.chat_template = get_chat_template(path)
        self.processor = MultimodalProcessor(
            Tokenizer(path), self.chat_template, vl_encoder=self.encoder, backend="pytorch"
        )

    def prompt_input(self, messages: list[dict], **kwargs: Any) -> dict[str, Any]:
        """`get_prompt_input` as the server calls it for a chat request."""
        return asyncio.run(self.processor.get_prompt_input(messages, do_preprocess=True, **kwargs))


__all__ = ["LMDeployFrontEnd"]
