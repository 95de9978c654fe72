"""Intern-S1 family support for vLLM and LMDeploy.

Importing this package imports no engine: the engine adapters live in `interns1_plugin.vllm` and
`interns1_plugin.lmdeploy` and are loaded by the engines' own plugin hooks.
"""

__version__ = "0.1.0"
