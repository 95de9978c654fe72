"""Finding one file of a checkpoint (local folder or hub cache) the way a loader was asked to.

The plugin's loaders sometimes need to peek at a checkpoint file before transformers loads it
(its `config.json`, whether a video config exists). They pass on the caller's hub arguments, so
the peek looks where the real load will, and treat a missing file as an answer, not an error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from transformers.utils import cached_file

#: `from_pretrained` keyword arguments that say where a checkpoint's files are.
HUB_KEYS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")


def find_checkpoint_file(
    path: str | os.PathLike, name: str, load_kwargs: Mapping[str, Any]
) -> str | None:
    """Local path of `name` in the checkpoint at `path`, or None when it has no such file."""
    hub = {key: load_kwargs[key] for key in HUB_KEYS if load_kwargs.get(key) is not None}
    return cached_file(
        path,
        name,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
        _raise_exceptions_for_gated_repo=False,
        **hub,
    )
