"""The plugin's model classes for LMDeploy's PyTorch engine, found through its module map.

LMDeploy picks a model class by looking the checkpoint's architecture up in
`lmdeploy.pytorch.models.module_map` (`CUSTOM_MODULE_MAP` entries win over its own) and imports
the fully qualified name it finds. `interns1_plugin.lmdeploy.register.register_engine_models`
puts `MODULE_MAP` there in every process. Nothing heavy is imported here.
"""

from __future__ import annotations

from interns1_plugin.env_flags import env_flag

#: Set to 1 to leave LMDeploy's own Intern-S1 model classes in place (the same switch as vLLM's).
KEEP_BUILTIN_ENV = "INTERNS1_PLUGIN_KEEP_BUILTIN_MODEL"

_PACKAGE = __name__
#: Architecture string (config.json `architectures`) -> qualified class name LMDeploy imports.
MODULE_MAP: dict[str, str] = {
    "InternS1ForConditionalGeneration": f"{_PACKAGE}.interns1.InternS1ForConditionalGeneration",
    "InternS1ProForConditionalGeneration": (
        f"{_PACKAGE}.interns1_pro.InternS1ProForConditionalGeneration"
    ),
    "InternS1_1_ForConditionalGeneration": (
        f"{_PACKAGE}.interns1_pro.InternS1ProForConditionalGeneration"
    ),
}


def keep_builtin() -> bool:
    return env_flag(KEEP_BUILTIN_ENV)


__all__ = ["KEEP_BUILTIN_ENV", "MODULE_MAP", "keep_builtin"]
