"""Teach transformers' Auto* classes the Intern-S1 checkpoints, with no remote code.

Intern-S1 / mini store the exact layout of transformers' native `InternVLForConditionalGeneration`
(same tensor names, same vision tower, same projector), so the model classes registered here are
InternVL's own; only the configs and the processor are the plugin's. Registration is idempotent
and never touches `trust_remote_code`: a directory whose `config.json` says `model_type: interns1`
loads through these classes and its `auto_map` is ignored, because transformers prefers an
explicitly registered class (even when a caller passes `trust_remote_code=True`).
"""

from __future__ import annotations

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageTextToText,
    AutoProcessor,
    InternVLForConditionalGeneration,
    InternVLModel,
    InternVLVisionModel,
)

from interns1_plugin.configs.interns1 import InternS1Config
from interns1_plugin.configs.interns1_pro import (
    InternS1_1Config,
    InternS1ProConfig,
    InternS1ProTimeSeriesConfig,
    InternS1ProVisionConfig,
)
from interns1_plugin.configs.vision import InternS1VisionConfig

#: Intern-S1-Pro's configs: no transformers model class exists for Pro, only the configs register.
PRO_CONFIGS = (
    InternS1ProVisionConfig,
    InternS1ProTimeSeriesConfig,
    InternS1ProConfig,
    InternS1_1Config,
)


def _register_config(config_class: type) -> None:
    """AutoConfig refuses a second registration, so register only what is not there yet."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if config_class.model_type not in CONFIG_MAPPING:
        AutoConfig.register(config_class.model_type, config_class)


def _register_model(auto_class: type, config_class: type, model_class: type) -> None:
    """Map our config to a native model class.

    `auto_class.register` insists that `model_class.config_class` has the config's name; the native
    InternVL classes name `InternVLConfig`, which ours subclasses. The mapping itself accepts any
    pair, and `exist_ok` keeps a second call harmless.
    """
    auto_class._model_mapping.register(config_class, model_class, exist_ok=True)


def _register_processors() -> None:
    """`InternS1Processor`, the class the checkpoints name.

    Its image and video processors are built by the processor itself, not through
    AutoImageProcessor / AutoVideoProcessor: transformers 5 stores backend dicts in those
    registries, and its by-name class lookup (`ProcessorMixin.get_possibly_dynamic_module`) then
    fails for every processor loaded afterwards in the process.
    """
    from interns1_plugin.processing.processor import InternS1Processor

    AutoProcessor.register(InternS1Config, InternS1Processor, exist_ok=True)


def register_with_transformers() -> None:
    """Register configs, native model classes and the plugin's processor (safe to call twice)."""
    _register_config(InternS1VisionConfig)
    _register_config(InternS1Config)
    for config_class in PRO_CONFIGS:
        _register_config(config_class)
    _register_model(AutoModel, InternS1VisionConfig, InternVLVisionModel)
    _register_model(AutoModel, InternS1Config, InternVLModel)
    _register_model(AutoModelForImageTextToText, InternS1Config, InternVLForConditionalGeneration)
    _register_processors()


__all__ = ["PRO_CONFIGS", "register_with_transformers"]
