"""Hub-style bundled Python files planted into a checkpoint, rigged to reveal if they ever run.

The hub's Intern-S1 repositories ship `configuration_*.py`, `modeling_*.py`, `tokenization_*.py`,
`processing_*.py`, `image_processing_*.py` and `video_processing_*.py` files and point `auto_map`
entries at them. The plugin promises that its registered classes serve such a checkpoint and
none of those files executes, even under `trust_remote_code`. Tests for each engine (vLLM's
server, LMDeploy's entry points) prove it by planting files here that:

- are named `<kind>_<stem>.py` for each kind in `HUB_MODULES` (`stem` from `HUB_NAMES`);
- when executed, write a marker file named after the module (e.g. `modeling_interns1`) into a
  marker directory, then raise, so a run is both recorded and loud;
- are what every `auto_map` a checkpoint can hold points at (see `hub_auto_maps`): `config.json`
  (AutoConfig, AutoModel, AutoModelForCausalLM), `tokenizer_config.json` (AutoTokenizer, slow
  and fast) and each of `PROCESSOR_CONFIGS` (AutoProcessor, AutoImageProcessor,
  AutoVideoProcessor).

Afterwards `markers_found` (or `Bundle.ran`) lists the modules that ran; an empty list, together
with controls showing each planted file does leave its marker when run, means none ran.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Hub-style module kinds; a checkpoint gets `<kind>_<stem>.py` for each.
HUB_MODULES = (
    "configuration",
    "modeling",
    "tokenization",
    "processing",
    "image_processing",
    "video_processing",
)
#: Processor-side config files; each gets the same processor `auto_map`.
PROCESSOR_CONFIGS = (
    "processor_config.json",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
)
#: Module stem and class prefix of the hub files, per checkpoint.
HUB_NAMES = {"mini": ("interns1", "InternS1"), "pro": ("interns1_pro", "InternS1Pro")}


def markers_found(markers: Path) -> list[str]:
    """The planted modules that executed (the markers they left in `markers`), sorted.

    A missing directory means nothing ran: planted files create it only when executed.
    """
    return sorted(p.name for p in markers.iterdir()) if markers.exists() else []


@dataclass(frozen=True)
class Bundle:
    """A checkpoint with planted hub code, where its markers go, and transformers' module cache."""

    path: Path
    markers: Path
    module_cache: Path

    def ran(self) -> list[str]:
        """The bundled modules that executed (their markers), sorted."""
        return markers_found(self.markers)

    def cached(self) -> list[str]:
        """Bundled files transformers copied into its dynamic-module cache to import them.

        transformers copies a remote-code file there before importing it, so an empty cache shows
        no bundled file was even fetched, not merely that its import failed.
        """
        if not self.module_cache.exists():
            return []
        return sorted(p.name for p in self.module_cache.rglob("*.py") if p.name != "__init__.py")


def hub_auto_maps(stem: str, prefix: str) -> dict[str, dict[str, Any]]:
    """The `auto_map` to write into each config file, every entry aimed at a planted module.

    Keys are file names within the checkpoint; each covers every Auto class transformers (or an
    engine) may resolve through that file, so no entry point is left unrigged.
    """
    processors = {
        "AutoProcessor": f"processing_{stem}.{prefix}Processor",
        "AutoImageProcessor": f"image_processing_{stem}.{prefix}ImageProcessor",
        "AutoVideoProcessor": f"video_processing_{stem}.{prefix}VideoProcessor",
    }
    return {
        "config.json": {
            "AutoConfig": f"configuration_{stem}.{prefix}Config",
            "AutoModel": f"modeling_{stem}.{prefix}Model",
            "AutoModelForCausalLM": f"modeling_{stem}.{prefix}ForConditionalGeneration",
        },
        "tokenizer_config.json": {
            "AutoTokenizer": [
                f"tokenization_{stem}.{prefix}Tokenizer",
                f"tokenization_{stem}.{prefix}TokenizerFast",
            ]
        },
        **{name: processors for name in PROCESSOR_CONFIGS},
    }


def plant_hub_code(model: Path, stem: str, prefix: str, markers: Path) -> None:
    """Hub-style Python files that record any execution, and every `auto_map` aimed at them.

    Each file writes its marker before raising, so a run is recorded even when the caller
    swallows the error. Existing config files keep their other keys; missing ones are created
    holding only the `auto_map`.
    """
    for kind in HUB_MODULES:
        module = f"{kind}_{stem}"
        body = (
            "from pathlib import Path\n"
            f"markers = Path({str(markers)!r})\n"
            "markers.mkdir(parents=True, exist_ok=True)\n"
            f"(markers / {module!r}).write_text('executed')\n"
            f"raise RuntimeError('bundled checkpoint code ran: {module}')\n"
        )
        (model / f"{module}.py").write_text(body, encoding="utf-8")
    for name, auto_map in hub_auto_maps(stem, prefix).items():
        path = model / name
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        data["auto_map"] = auto_map
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
