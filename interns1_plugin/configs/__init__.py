"""transformers config classes of the Intern-S1 family and their Auto* registration."""

from interns1_plugin.configs.interns1 import InternS1Config
from interns1_plugin.configs.interns1_pro import InternS1_1Config, InternS1ProConfig
from interns1_plugin.configs.registration import register_with_transformers
from interns1_plugin.configs.vision import InternS1VisionConfig

__all__ = [
    "InternS1Config",
    "InternS1ProConfig",
    "InternS1_1Config",
    "InternS1VisionConfig",
    "register_with_transformers",
]
