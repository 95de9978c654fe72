"""The plugin's vLLM model classes, registered lazily over vLLM's built-in ones.

Nothing heavy is imported here: vLLM imports the model module only when a checkpoint asks for it.
"""

from __future__ import annotations

import logging

from interns1_plugin.env_flags import env_flag

#: Set to 1 to leave vLLM's own Intern-S1 implementation in place.
KEEP_BUILTIN_ENV = "INTERNS1_PLUGIN_KEEP_BUILTIN_MODEL"

#: Architecture string (config.json `architectures`) -> "module:Class" vLLM imports on demand.
MODELS: dict[str, str] = {
    "InternS1ForConditionalGeneration": (
        "interns1_plugin.vllm.models.interns1:InternS1ForConditionalGeneration"
    ),
    "InternS1ProForConditionalGeneration": (
        "interns1_plugin.vllm.models.interns1_pro:InternS1ProForConditionalGeneration"
    ),
    "InternS1_1_ForConditionalGeneration": (
        "interns1_plugin.vllm.models.interns1_pro:InternS1ProForConditionalGeneration"
    ),
}


def keep_builtin() -> bool:
    return env_flag(KEEP_BUILTIN_ENV)


def register_models(logger: logging.Logger | None = None) -> list[str]:
    """Point vLLM's model registry at the plugin's classes; returns the architectures taken over.

    Idempotent. With `INTERNS1_PLUGIN_KEEP_BUILTIN_MODEL=1` it registers nothing.
    """
    from vllm import ModelRegistry

    log = logger or logging.getLogger("vllm.plugins.interns1")
    if keep_builtin():
        log.info(
            "interns1-plugin leaves vLLM's built-in %s in place (%s=1)",
            ", ".join(MODELS),
            KEEP_BUILTIN_ENV,
        )
        return []
    for architecture, target in MODELS.items():
        ModelRegistry.register_model(architecture, target)
    log.info(
        "interns1-plugin serves %s with its own model (set %s=1 for vLLM's built-in)",
        ", ".join(MODELS),
        KEEP_BUILTIN_ENV,
    )
    return list(MODELS)
