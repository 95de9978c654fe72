"""Teach transformers' Auto* classes the Intern-S1 checkpoints, with no remote code.

Intern-S1 / mini store the exact layout of transformers' native `InternVLForConditionalGeneration`
(same tensor names, same vision tower, same projector), so the model classes registered here are
InternVL's own; only the configs and the processors are the plugin's. Registration is idempotent
and never touches `trust_remote_code`: a directory whose `config.json` says `model_type: interns1`
(or `interns1_pro` / `interns1_1`) loads through these classes and its `auto_map` is ignored,
even when a caller passes `trust_remote_code=True`.

Why the `auto_map` loses (transformers 5, `models/auto/*_auto.py`): each Auto class follows an
`auto_map` under `trust_remote_code=True` unless it has *explicit local code*, a class it found
without the checkpoint's files whose module is not `transformers.*`. For configs that is the class
registered for the `model_type`; for processors, the class named by `processor_class` in a
processor file, else the class registered for the config's type. Intern-S1's files name
`InternS1Processor`, which `processor_class_from_name` finds among the registered classes. A Pro
checkpoint's files may name no processor class (the tiny test checkpoint's do not), and without a
Pro registration `AutoProcessor` then had no local code and ran the bundled
`processing_interns1_pro.py`. `InternS1ProProcessor` is registered for both Pro config classes
(the mapping is keyed by exact type), and a file that names `InternS1ProProcessor` finds it by
name as well. Tokenizers follow another rule; see `tokenizer.local_only`.
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

#: Intern-S1-Pro's configs (no transformers model class exists for Pro, so none is mapped).
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
    """`InternS1Processor` for Intern-S1 / mini, `InternS1ProProcessor` for both Pro configs.

    Their image and video processors are built by the processors themselves, not through
    AutoImageProcessor / AutoVideoProcessor: transformers 5 stores backend dicts in those
    registries, and its by-name class lookup (`ProcessorMixin.get_possibly_dynamic_module`) then
    fails for every processor loaded afterwards in the process.
    """
    from interns1_plugin.processing.pro_processor import InternS1ProProcessor
    from interns1_plugin.processing.processor import InternS1Processor

    AutoProcessor.register(InternS1Config, InternS1Processor, exist_ok=True)
    for config_class in (InternS1ProConfig, InternS1_1Config):
        AutoProcessor.register(config_class, InternS1ProProcessor, exist_ok=True)


def register_with_transformers() -> None:
    """Register configs, native model classes and the plugin's processors (safe to call twice)."""
    _register_config(InternS1VisionConfig)
    _register_config(InternS1Config)
    for config_class in PRO_CONFIGS:
        _register_config(config_class)
    _register_model(AutoModel, InternS1VisionConfig, InternVLVisionModel)
    _register_model(AutoModel, InternS1Config, InternVLModel)
    _register_model(AutoModelForImageTextToText, InternS1Config, InternVLForConditionalGeneration)
    _register_processors()


__all__ = ["PRO_CONFIGS", "register_with_transformers"]
