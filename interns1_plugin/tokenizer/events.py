"""The events the span splitter hands to the encoder: text, tokens with ids, and model switches.

An event is `(kind, string)`. Splitting produces them in one pass over the text; encoding walks
them with a stack of active sub-models, exactly as the reference walks its token list.
"""

from __future__ import annotations

from typing import Final

#: Text to encode with the active sub-model (or byte-level BPE when none is active).
TEXT: Final = 0
#: An added token (special or not): one id; explicit sub-model tags also push or pop a model.
TAG: Final = 1
#: `<MOLFORMULA>` / `</MOLFORMULA>`: encoded as ordinary byte-level BPE text.
PROTECT: Final = 2
#: A zero-id marker that pushes a sub-model.
OPEN: Final = 3
#: A zero-id marker that pops the active sub-model.
CLOSE: Final = 4

Event = tuple[int, str]
