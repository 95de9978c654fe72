"""Expand the chat template's multimodal placeholders in a prompt, the way vLLM does.

vLLM tokenizes the rendered prompt, then replaces each placeholder's token ids (`<IMG_CONTEXT>`,
`<video>`, `<|vision_start|><|image_pad|><|vision_end|>`, ...) with the ids of its expansion,
the items of one modality taking that modality's placeholders in prompt order. Only when a
placeholder is not found as tokens (a non-special placeholder merged with its neighbours by BPE)
does it fall back to replacing text and tokenizing again. Doing the same here gives LMDeploy the
very ids vLLM computes, and tells the engine where each item's feature tokens sit: one run of
the feature token per image, per video frame (Intern-S1) or per temporal group (Pro), per series.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True)
class Expansion:
    """What one item's placeholder becomes.

    `target` is the placeholder text the template writes for the item's `modality`,
    `replacement` the expanded text, and `feature_token` the token the engine fills with the
    item's features (each maximal run of it in `replacement` is one run of features).
    """

    modality: str
    target: str
    replacement: str
    feature_token: str


class ExpandedPrompt(NamedTuple):
    """Prompt ids, and for each expansion (in the order given) its feature runs `(start, end)`."""

    input_ids: list[int]
    runs: list[list[tuple[int, int]]]


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def token_runs(ids: Sequence[int], token_id: int, base: int = 0) -> list[tuple[int, int]]:
    """`(start, end)` of each maximal run of `token_id` in `ids`, shifted by `base`."""
    runs: list[tuple[int, int]] = []
    for position, token in enumerate(ids):
        if token != token_id:
            continue
        if runs and runs[-1][1] == base + position:
            runs[-1] = (runs[-1][0], base + position + 1)
        else:
            runs.append((base + position, base + position + 1))
    return runs


def _by_modality(expansions: Sequence[Expansion]) -> dict[str, list[int]]:
    queues: dict[str, list[int]] = defaultdict(list)
    for index, expansion in enumerate(expansions):
        queues[expansion.modality].append(index)
    return queues


def _targets(expansions: Sequence[Expansion]) -> dict[str, str]:
    targets: dict[str, str] = {}
    for expansion in expansions:
        known = targets.setdefault(expansion.modality, expansion.target)
        if known != expansion.target:
            raise ValueError(f"two placeholders for modality {expansion.modality!r}")
    return targets


def _expand_tokens(
    ids: list[int], tokenizer: Any, expansions: Sequence[Expansion]
) -> ExpandedPrompt | None:
    """Replace placeholder token sequences; None when an item found no placeholder."""
    queues = _by_modality(expansions)
    targets = {m: _encode(tokenizer, t) for m, t in _targets(expansions).items()}
    out: list[int] = []
    runs: list[list[tuple[int, int]]] = [[] for _ in expansions]
    position = 0
    while position < len(ids):
        for modality, queue in queues.items():
            target = targets[modality]
            if queue and target and ids[position : position + len(target)] == target:
                index = queue.pop(0)
                expansion = expansions[index]
                replacement = _encode(tokenizer, expansion.replacement)
                feature_id = tokenizer.convert_tokens_to_ids(expansion.feature_token)
                runs[index] = token_runs(replacement, feature_id, base=len(out))
                out.extend(replacement)
                position += len(target)
                break
        else:
            out.append(ids[position])
            position += 1
    if any(queues.values()):
        return None
    return ExpandedPrompt(out, runs)


def _expand_text(text: str, tokenizer: Any, expansions: Sequence[Expansion]) -> ExpandedPrompt:
    """Replace placeholder text, then tokenize the whole prompt again (vLLM's fallback)."""
    queues = _by_modality(expansions)
    targets = _targets(expansions)
    pieces: list[str] = []
    order: list[int] = []
    position = 0
    while True:
        found = [(text.find(targets[m], position), m) for m, queue in queues.items() if queue]
        found = [(start, m) for start, m in found if start >= 0]
        if not found:
            break
        start, modality = min(found)
        index = queues[modality].pop(0)
        pieces += [text[position:start], expansions[index].replacement]
        order.append(index)
        position = start + len(targets[modality])
    missing = {m: len(q) for m, q in queues.items() if q}
    if missing:
        detail = ", ".join(f"{count} {m} item(s)" for m, count in sorted(missing.items()))
        raise ValueError(
            f"the prompt has fewer placeholders than multimodal items: {detail} found no "
            f"placeholder ({', '.join(repr(targets[m]) for m in sorted(missing))})"
        )
    pieces.append(text[position:])
    ids = _encode(tokenizer, "".join(pieces))
    runs: list[list[tuple[int, int]]] = [[] for _ in expansions]
    for feature_token in {e.feature_token for e in expansions}:
        all_runs = token_runs(ids, tokenizer.convert_tokens_to_ids(feature_token))
        for index in (i for i in order if expansions[i].feature_token == feature_token):
            wanted = len(
                token_runs(
                    _encode(tokenizer, expansions[index].replacement),
                    tokenizer.convert_tokens_to_ids(feature_token),
                )
            )
            runs[index], all_runs = all_runs[:wanted], all_runs[wanted:]
    return ExpandedPrompt(ids, runs)


def _check_feature_tokens(
    prompt: ExpandedPrompt, tokenizer: Any, expansions: Sequence[Expansion]
) -> None:
    """Every feature token of the prompt must be one an item fills, or the engine misplaces
    features (or fails) when it scatters them over the feature-token positions."""
    expected: dict[str, int] = defaultdict(int)
    for expansion, runs in zip(expansions, prompt.runs, strict=True):
        expected[expansion.feature_token] += sum(end - start for start, end in runs)
    for token, count in expected.items():
        token_id = tokenizer.convert_tokens_to_ids(token)
        present = sum(1 for i in prompt.input_ids if i == token_id)
        if present != count:
            raise ValueError(
                f"the prompt holds {present} {token!r} tokens where its multimodal items fill "
                f"{count}: remove {token!r} from the message text"
            )


def expand_prompt(
    prompt: str | Sequence[int], tokenizer: Any, expansions: Sequence[Expansion]
) -> ExpandedPrompt:
    """Expand every item's placeholder in a rendered prompt (text) or in prompt token ids.

    Raises ValueError when an item has no placeholder left for it, or when the result holds
    feature tokens that no item fills.
    """
    ids = _encode(tokenizer, prompt) if isinstance(prompt, str) else [int(i) for i in prompt]
    expanded = _expand_tokens(ids, tokenizer, expansions)
    if expanded is None:
        # vLLM decodes the ids even for a text prompt, so the text fallback starts from there.
        expanded = _expand_text(tokenizer.decode(ids), tokenizer, expansions)
    _check_feature_tokens(expanded, tokenizer, expansions)
    return expanded


__all__ = ["ExpandedPrompt", "Expansion", "expand_prompt", "token_runs"]
