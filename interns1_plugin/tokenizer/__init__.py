"""The Intern-S1 dynamic tokenizer: byte-level BPE plus SMILES / IUPAC / FASTA sub-models.

`InternS1Tokenizer` is the class the checkpoints name in `tokenizer_config.json`; call
`register_with_transformers()` once so `AutoTokenizer.from_pretrained` finds it without remote
code.
"""

from .registration import register_with_transformers
from .tokenization import InternS1Tokenizer
from .validation import rdkit_available

__all__ = ["InternS1Tokenizer", "rdkit_available", "register_with_transformers"]
