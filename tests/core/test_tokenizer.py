"""InternS1Tokenizer: the reference's ids on every worked example, with and without RDKit, plus
properties (round trip, never raising, batch == single) on generated text.

The worked examples and the tiny vocabulary come from the spec folder (`INTERNS1_SPEC_DIR`,
default `<repo>/../shared/spec`); without it these tests are skipped.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interns1_plugin import formats
from interns1_plugin.tokenizer import InternS1Tokenizer, rdkit_available, register_with_transformers
from interns1_plugin.tokenizer.detection import SMILES_RE, smiles_matches
from interns1_plugin.tokenizer.layout import (
    FASTA_AUTO_CLOSE,
    FASTA_AUTO_OPEN,
    SMILES_AUTO_CLOSE,
    SMILES_AUTO_OPEN,
)
from interns1_plugin.tokenizer.smiles_rules import _scan_accept, rules_accept
from interns1_plugin.tokenizer.validation import SmilesValidator

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = Path(os.environ.get("INTERNS1_SPEC_DIR", REPO_ROOT.parent / "shared" / "spec"))
TOKENIZER_SPEC = SPEC_DIR / "tokenizer"
VOCAB_DIR = TOKENIZER_SPEC / "vocab"
CASES_FILE = TOKENIZER_SPEC / "cases.jsonl"
META_FILE = TOKENIZER_SPEC / "meta.json"

needs_spec = pytest.mark.skipif(
    not (CASES_FILE.is_file() and VOCAB_DIR.is_dir()),
    reason=f"tokenizer spec not found at {TOKENIZER_SPEC} (set INTERNS1_SPEC_DIR)",
)
needs_rdkit = pytest.mark.skipif(
    not rdkit_available(), reason="RDKit is not installed (pip install 'interns1-plugin[chem]')"
)
MARKERS = (SMILES_AUTO_OPEN, SMILES_AUTO_CLOSE, FASTA_AUTO_OPEN, FASTA_AUTO_CLOSE)
PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _cases() -> list[Any]:
    if not CASES_FILE.is_file():
        return [pytest.param(None, marks=needs_spec, id="no-spec")]
    lines = CASES_FILE.read_text(encoding="utf-8").splitlines()
    return [pytest.param(c, id=c["id"]) for c in (json.loads(line) for line in lines if line)]


CASES = _cases()


@pytest.fixture(scope="module")
def tok() -> InternS1Tokenizer:
    """The hand-written rules, whatever is installed: the cases' `ids` were made without RDKit."""
    if not VOCAB_DIR.is_dir():
        pytest.skip(f"tokenizer spec not found at {TOKENIZER_SPEC} (set INTERNS1_SPEC_DIR)")
    return InternS1Tokenizer.from_pretrained(str(VOCAB_DIR), use_rdkit=False)


@pytest.fixture(scope="module")
def tok_rdkit() -> InternS1Tokenizer:
    if not rdkit_available():
        pytest.skip("RDKit is not installed (pip install 'interns1-plugin[chem]')")
    if not VOCAB_DIR.is_dir():
        pytest.skip(f"tokenizer spec not found at {TOKENIZER_SPEC} (set INTERNS1_SPEC_DIR)")
    return InternS1Tokenizer.from_pretrained(str(VOCAB_DIR), use_rdkit=True)


@pytest.fixture(scope="module")
def meta() -> dict[str, Any]:
    if not META_FILE.is_file():
        pytest.skip(f"tokenizer spec not found at {TOKENIZER_SPEC} (set INTERNS1_SPEC_DIR)")
    return json.loads(META_FILE.read_text(encoding="utf-8"))


def expected_round_trip(text: str) -> str:
    """What decode(encode(text)) gives: NFC, zero-id markers gone, `▁` read as a space."""
    text = unicodedata.normalize("NFC", text)
    for marker in MARKERS:
        text = text.replace(marker, "")
    return text.replace("\u2581", " ")


# -- the worked examples ---------------------------------------------------------------------


@needs_spec
@pytest.mark.parametrize("case", CASES)
def test_case_without_rdkit(tok: InternS1Tokenizer, case: dict[str, Any]) -> None:
    text = case["text"]
    assert tok.encode(text, add_special_tokens=False) == case["ids"]
    assert tok(text)["input_ids"] == case["ids"]
    assert tok.decode(case["ids"]) == case["decoded"]
    assert tok.tokenize(text) == case["tokens"]
    assert tok.convert_tokens_to_ids(case["tokens"]) == case["ids"]


@needs_spec
@needs_rdkit
@pytest.mark.parametrize("case", CASES)
def test_case_with_rdkit(tok_rdkit: InternS1Tokenizer, case: dict[str, Any]) -> None:
    sensitive = case.get("rdkit_sensitive", False)
    ids = case["ids_rdkit"] if sensitive else case["ids"]
    decoded = case["decoded_rdkit"] if sensitive else case["decoded"]
    assert tok_rdkit.encode(case["text"], add_special_tokens=False) == ids
    assert tok_rdkit(case["text"])["input_ids"] == ids
    assert tok_rdkit.decode(ids) == decoded


@needs_spec
def test_rdkit_sensitive_cases_really_differ() -> None:
    """The documented difference: with RDKit some texts get other ids."""
    sensitive = [c.values[0] for c in CASES if c.values[0].get("rdkit_sensitive")]
    assert sensitive, "the spec lists at least one RDKit-sensitive case"
    for case in sensitive:
        assert case["ids"] != case["ids_rdkit"]


def test_default_validator_follows_rdkit_availability() -> None:
    assert SmilesValidator().use_rdkit == rdkit_available()
    if not rdkit_available():
        with pytest.raises(ImportError):
            SmilesValidator(use_rdkit=True)


# -- vocabulary, layout, special tokens -------------------------------------------------------


@needs_spec
def test_length_and_layout(tok: InternS1Tokenizer, meta: dict[str, Any]) -> None:
    assert len(tok) == meta["len_tokenizer"] == tok.vocab_size
    layout = meta["layout"]
    pieces = {
        "smiles_pieces": "<SMILES>C</SMILES>",
        "iupac_pieces": "<IUPAC>methyl</IUPAC>",
        "fasta_pieces": "A" * 30,
    }
    for name, text in pieces.items():
        low, high = layout[name]
        inner = [i for i in tok.encode(text) if i not in tok.added_tokens_decoder]
        assert inner and all(low <= i < high for i in inner), (name, inner)


@needs_spec
def test_every_added_token_is_one_id(tok: InternS1Tokenizer, meta: dict[str, Any]) -> None:
    for token, index in meta["token_ids"].items():
        assert tok.encode(token) == [index], token
        assert tok.convert_tokens_to_ids(token) == index
        assert tok.convert_ids_to_tokens(index) == token
        assert tok.added_tokens_decoder[index].content == token
        assert tok.get_vocab()[token] == index
        assert tok.decode([index]) == token


@needs_spec
def test_chat_template_tokens_are_single_ids(tok: InternS1Tokenizer) -> None:
    for token in (
        formats.IM_START,
        formats.IM_END,
        formats.ENDOFTEXT,
        formats.THINK_START,
        formats.THINK_END,
        formats.TOOL_CALL_START,
        formats.TOOL_CALL_END,
        formats.IMG_CONTEXT,
        formats.SMILES_START,
        formats.IUPAC_END,
    ):
        assert len(tok.encode(f"a{token}b")) == 3, token


@needs_spec
def test_special_tokens(tok: InternS1Tokenizer, meta: dict[str, Any]) -> None:
    ids = meta["token_ids"]
    assert tok.eos_token == formats.IM_END and tok.eos_token_id == ids[formats.IM_END]
    assert tok.pad_token_id == ids[formats.ENDOFTEXT]
    assert ids[formats.IM_START] in tok.all_special_ids
    text = f"{formats.IM_START}user\nhi{formats.IM_END}"
    assert tok.decode(tok.encode(text), skip_special_tokens=True) == "user\nhi"


@needs_spec
@pytest.mark.parametrize("marker", MARKERS)
def test_logical_markers_have_no_ids(tok: InternS1Tokenizer, marker: str) -> None:
    assert tok.encode(marker) == []
    assert tok.tokenize(marker) == [marker]


@needs_spec
@pytest.mark.parametrize("tag", [formats.MOLFORMULA_START, formats.MOLFORMULA_END])
def test_molformula_tags_are_plain_bpe_text(
    tok: InternS1Tokenizer, meta: dict[str, Any], tag: str
) -> None:
    low, high = meta["layout"]["bpe"]
    ids = tok.encode(tag)
    assert len(ids) > 1 and all(low <= i < high for i in ids)
    assert tok.decode(ids) == tag


@needs_spec
def test_decode_options(tok: InternS1Tokenizer) -> None:
    ids = tok.encode(f"{formats.THINK_START}x{formats.THINK_END}")
    assert tok.decode(ids) == f"{formats.THINK_START}x{formats.THINK_END}"
    spaced = tok.decode(ids, spaces_between_special_tokens=True)
    assert spaced == f"{formats.THINK_START} x {formats.THINK_END}"
    assert tok.decode([len(tok) + 5, -1]) == ""  # ids outside the vocabulary decode to nothing


@needs_spec
def test_convert_tokens_to_string_reads_sub_model_spaces(tok: InternS1Tokenizer) -> None:
    assert tok.convert_tokens_to_string(["\u2581acid", "Ġx", "Ċ"]) == " acid x\n"


@needs_spec
def test_offsets_are_not_offered(tok: InternS1Tokenizer) -> None:
    with pytest.raises(NotImplementedError):
        tok("CCO", return_offsets_mapping=True)


# -- batch, loading, saving ------------------------------------------------------------------


@needs_spec
def test_batch_equals_single_on_cases(tok: InternS1Tokenizer) -> None:
    texts = [c.values[0]["text"] for c in CASES]
    singles = [tok.encode(t, add_special_tokens=False) for t in texts]
    assert tok.encode_batch(texts) == singles
    assert tok(texts)["input_ids"] == singles
    padded = tok(texts, padding=True)
    width = max(map(len, singles))
    assert all(len(row) == width for row in padded["input_ids"])
    assert [sum(mask) for mask in padded["attention_mask"]] == [len(s) for s in singles]


@needs_spec
def test_truncation_and_pairs_use_transformers_rules(tok: InternS1Tokenizer) -> None:
    text = "Aspirin CC(=O)OC1=CC=CC=C1C(=O)O is an NSAID."
    full = tok.encode(text)
    assert tok(text, truncation=True, max_length=5)["input_ids"] == full[:5]
    assert tok(text, "CCO")["input_ids"] == full + tok.encode("CCO")
    assert tok([text], ["CCO"])["input_ids"] == [full + tok.encode("CCO")]


@needs_spec
def test_auto_tokenizer_without_remote_code(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    register_with_transformers()
    loaded = AutoTokenizer.from_pretrained(str(VOCAB_DIR), trust_remote_code=False)
    assert type(loaded) is InternS1Tokenizer

    # A checkpoint that also names remote code: the registered class still wins, no code runs.
    copy = tmp_path / "ckpt"
    shutil.copytree(VOCAB_DIR, copy)
    config_path = copy / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["auto_map"] = {"AutoTokenizer": ["tokenization_interns1.InternS1Tokenizer", None]}
    config_path.write_text(json.dumps(config), encoding="utf-8")
    assert (
        type(AutoTokenizer.from_pretrained(str(copy), trust_remote_code=True)) is InternS1Tokenizer
    )


@needs_spec
def test_save_reload_and_pickle(tok: InternS1Tokenizer, tmp_path: Path) -> None:
    text = (
        "Aspirin CC(=O)OC1=CC=CC=C1C(=O)O <IUPAC>propan-2-one</IUPAC> MKTAYIAKQRQISFVKSHFSRQLEERL"
    )
    tok.save_pretrained(str(tmp_path))
    saved = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert saved["tokenizer_class"] == "InternS1Tokenizer"
    reloaded = InternS1Tokenizer.from_pretrained(str(tmp_path), use_rdkit=False)
    assert reloaded.encode(text) == tok.encode(text) and len(reloaded) == len(tok)
    assert pickle.loads(pickle.dumps(tok)).encode(text) == tok.encode(text)


@needs_spec
def test_added_tokens_get_new_ids(tmp_path: Path) -> None:
    fresh = InternS1Tokenizer.from_pretrained(str(VOCAB_DIR), use_rdkit=False)
    size = len(fresh)
    assert fresh.add_tokens(["<new_tag>"]) == 1
    assert len(fresh) == size + 1
    assert fresh.encode("x<new_tag>y")[1] == size
    assert fresh.decode(fresh.encode("x<new_tag>y")) == "x<new_tag>y"


# -- properties --------------------------------------------------------------------------------

TAGS = [
    formats.SMILES_START,
    formats.SMILES_END,
    formats.SELFIES_START,
    formats.SELFIES_END,
    formats.IUPAC_START,
    formats.IUPAC_END,
    formats.MOLFORMULA_START,
    formats.MOLFORMULA_END,
    formats.FASTA_START,
    formats.FASTA_END,
    formats.IM_START,
    formats.IM_END,
    formats.ENDOFTEXT,
    formats.THINK_START,
    formats.THINK_END,
    formats.IMG_CONTEXT,
    *MARKERS,
    "<SMILES",
    "</",
    "<",
    ">",
]
SMILES_PARTS = [
    "C",
    "c",
    "N",
    "n",
    "O",
    "o",
    "S",
    "Cl",
    "Br",
    "F",
    "(",
    ")",
    "=",
    "#",
    "1",
    "2",
    "%12",
    "%",
    "[%]",
    "[C@@H]",
    "[nH]",
    "[O-]",
    "[Na+]",
    "[",
    "]",
    ".",
    ":",
    "/",
    "\\",
    "@",
    "H",
]
WORDS = [
    "the",
    "Water",
    "café",
    "e\u0301",
    "化学",
    "🌍",
    "\u2581",
    " ",
    "\n",
    "\t",
    "\r\n",
    "'s",
    "123",
    "²",
    "١٢",
    "\u00a0",
    "\u200b",
    "\x00",
]

smiles_like = st.lists(st.sampled_from(SMILES_PARTS), min_size=1, max_size=30).map("".join)
protein_like = st.text(alphabet="ACDEFGHIKLMNPQRSTVWY", min_size=20, max_size=60)
scientific_text = st.lists(
    st.one_of(
        st.sampled_from(TAGS),
        st.sampled_from(WORDS),
        smiles_like,
        protein_like,
        st.text(max_size=8),
    ),
    max_size=16,
).map("".join)
any_text = st.one_of(st.text(), scientific_text)


@needs_spec
@PROPERTY_SETTINGS
@given(text=any_text)
def test_round_trip(tok: InternS1Tokenizer, text: str) -> None:
    assert tok.decode(tok.encode(text)) == expected_round_trip(text)


@needs_spec
@PROPERTY_SETTINGS
@given(text=any_text)
def test_never_raises_and_agrees_with_itself(tok: InternS1Tokenizer, text: str) -> None:
    ids = tok.encode(text)
    tokens = tok.tokenize(text)
    assert tok.convert_tokens_to_ids(tokens) == ids  # the reference's definition of the ids
    assert all(0 <= i < len(tok) for i in ids)
    assert tok(text, split_special_tokens=True)["input_ids"] is not None
    tok.decode(ids, skip_special_tokens=True, spaces_between_special_tokens=True)


@needs_spec
@PROPERTY_SETTINGS
@given(text=any_text)
def test_byte_vocab_spells_every_id(tok: InternS1Tokenizer, text: str) -> None:
    """Grammar engines read each id's bytes from `byte_vocab()`; joined they give the text."""
    table = tok.byte_vocab()
    assert len(table) == len(tok)
    ids = tok.encode(text)
    assert b"".join(table[i] for i in ids).decode("utf-8") == tok.decode(ids)


@needs_spec
@PROPERTY_SETTINGS
@given(texts=st.lists(any_text, max_size=6))
def test_batch_equals_single(tok: InternS1Tokenizer, texts: list[str]) -> None:
    assert tok.encode_batch(texts) == [tok.encode(t) for t in texts]


@needs_spec
@PROPERTY_SETTINGS
@given(ids=st.lists(st.integers(min_value=-5, max_value=3000), max_size=40))
def test_decode_never_raises(tok: InternS1Tokenizer, ids: list[int]) -> None:
    assert isinstance(tok.decode(ids), str)
    tok.convert_tokens_to_string([t for t in tok.convert_ids_to_tokens(ids) if t is not None])


@settings(max_examples=500, deadline=None)
@given(
    text=st.one_of(
        smiles_like, st.lists(st.sampled_from(SMILES_PARTS + ["x", " ", "Na"])).map("".join)
    )
)
def test_fast_rules_match_the_character_loop(text: str) -> None:
    assert rules_accept(text) == _scan_accept(text)


@settings(max_examples=500, deadline=None)
@given(
    text=st.lists(
        st.one_of(smiles_like, st.sampled_from(WORDS + ["CCCCCCCCCCCC", "ccccc"]), protein_like),
        max_size=8,
    ).map(" ".join)
)
def test_prefilter_keeps_every_acceptable_match(text: str) -> None:
    """The run prefilter may only drop matches no validator accepts."""
    kept = {m.span() for m in smiles_matches(text)}
    full = list(SMILES_RE.finditer(text))
    assert kept <= {m.span() for m in full}
    validators = [SmilesValidator(use_rdkit=False)]
    if rdkit_available():
        validators.append(SmilesValidator(use_rdkit=True))
    for match in full:
        if match.span() not in kept:
            assert not any(v(match.group()) for v in validators), match.group()


@pytest.mark.parametrize(
    "text", ["C[%]1CCCCC1", "c1cc[%]2cc1", "[nH]1cccc1%12CC%12", "C%1", "[[C]]"]
)
def test_rules_quirks(text: str) -> None:
    assert rules_accept(text) == _scan_accept(text)


def test_segment_separator_in_user_text_is_plain_text(tok: InternS1Tokenizer) -> None:
    """The private-use string joining BPE segments inside one Rust call must stay invisible."""
    from interns1_plugin.tokenizer.bpe import SEGMENT_SEPARATOR

    for text in (SEGMENT_SEPARATOR, f"a{SEGMENT_SEPARATOR}<think>b CCCCCCCCCC {SEGMENT_SEPARATOR}"):
        assert tok.decode(tok.encode(text)) == text
        assert tok.encode_batch([text, "x"])[0] == tok.encode(text)


def test_marker_strings_cannot_be_detected() -> None:
    """Markers are never re-scanned by the splitter; that is only right if they cannot match."""
    for marker in MARKERS:
        assert not SMILES_RE.search(marker) and not re.search(r"[A-Z]{27,}", marker)
