"""Every token string, tag and marker of the Intern-S1 family, defined once.

Parsers, chat templates, processors and tests import these names instead of spelling the strings
again, so a format change is a one-line change here.
"""

from __future__ import annotations

from typing import Final

# --- chat turns -------------------------------------------------------------------------------
IM_START: Final = "<|im_start|>"
IM_END: Final = "<|im_end|>"
ENDOFTEXT: Final = "<|endoftext|>"

# --- reasoning --------------------------------------------------------------------------------
THINK_START: Final = "<think>"
THINK_END: Final = "</think>"

# --- tool calls: Intern-S1 / mini action format -----------------------------------------------
ACTION_START: Final = "<|action_start|>"
ACTION_END: Final = "<|action_end|>"
PLUGIN: Final = "<|plugin|>"
INTERPRETER: Final = "<|interpreter|>"
#: Role of tool results in the Intern-S1 template: `<|im_start|>environment name=<|plugin|>`.
ENVIRONMENT_ROLE: Final = "environment"

# --- tool calls: Intern-S1-Pro (Qwen) format --------------------------------------------------
TOOL_CALL_START: Final = "<tool_call>"
TOOL_CALL_END: Final = "</tool_call>"
TOOL_RESPONSE_START: Final = "<tool_response>"
TOOL_RESPONSE_END: Final = "</tool_response>"

#: JSON keys a call may use for its arguments, in order of preference.
ARGUMENT_KEYS: Final = ("parameters", "arguments")

# --- vision (Intern-S1 / mini) ----------------------------------------------------------------
IMG_START: Final = "<img>"
IMG_END: Final = "</img>"
IMG_CONTEXT: Final = "<IMG_CONTEXT>"
VIDEO_PLACEHOLDER: Final = "<video>"
IMAGE_SEQ_LENGTH: Final = 256
#: Label before each video frame's image in the prompt (1-based index).
FRAME_LABEL: Final = "Frame{index}: "
QUAD_START: Final = "<quad>"
QUAD_END: Final = "</quad>"
REF_START: Final = "<ref>"
REF_END: Final = "</ref>"
BOX_START: Final = "<box>"
BOX_END: Final = "</box>"

# --- vision (Intern-S1-Pro, Qwen3-VL style) ---------------------------------------------------
VISION_START: Final = "<|vision_start|>"
VISION_END: Final = "<|vision_end|>"
IMAGE_PAD: Final = "<|image_pad|>"
VIDEO_PAD: Final = "<|video_pad|>"
PRO_IMAGE_TOKEN_ID: Final = 151655
PRO_VIDEO_TOKEN_ID: Final = 151656

# --- time series (Intern-S1-Pro placeholder tokens) -------------------------------------------
TS_START: Final = "<|ts_start|>"
TS_TOKEN: Final = "<|ts_token|>"
TS_END: Final = "<|ts_end|>"

# --- scientific spans (dynamic tokenizer) -----------------------------------------------------
SMILES_START: Final = "<SMILES>"
SMILES_END: Final = "</SMILES>"
SELFIES_START: Final = "<SELFIES>"
SELFIES_END: Final = "</SELFIES>"
IUPAC_START: Final = "<IUPAC>"
IUPAC_END: Final = "</IUPAC>"
FASTA_START: Final = "<FASTA>"
FASTA_END: Final = "</FASTA>"
MOLFORMULA_START: Final = "<MOLFORMULA>"
MOLFORMULA_END: Final = "</MOLFORMULA>"
SMILES_AUTO_DETECT: Final = "<SMILES_AUTO_DETECT>"
SMILES_AUTO_DETECT_END: Final = "</SMILES_AUTO_DETECT>"
FASTA_AUTO_DETECT: Final = "<FASTA_AUTO_DETECT>"
FASTA_AUTO_DETECT_END: Final = "</FASTA_AUTO_DETECT>"

# --- generation defaults (generation_config.json of the published checkpoints) ----------------
BOS_TOKEN_ID: Final = 151643
EOS_TOKEN_ID: Final = 151645

# --- the parser name both engines are started with ---------------------------------------------
PARSER_NAME: Final = "intern-s1"

# --- chat template texts ----------------------------------------------------------------------
DEFAULT_SYSTEM_PROMPT: Final = (
    "You are an expert reasoner with extensive experience in all areas. You approach problems "
    "through systematic thinking and rigorous reasoning. Your response should reflect deep "
    "understanding and precise logical thinking, making your solution path and reasoning clear "
    "to others. Please put your thinking process within <think>...</think> tags."
)


# --- Qwen's 26 added tokens, in their vocabulary order (ids right after the byte-level BPE) ----
QWEN_ADDED_TOKENS: Final = (
    ENDOFTEXT,
    IM_START,
    IM_END,
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    VISION_START,
    VISION_END,
    "<|vision_pad|>",
    IMAGE_PAD,
    VIDEO_PAD,
    TOOL_CALL_START,
    TOOL_CALL_END,
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    TOOL_RESPONSE_START,
    TOOL_RESPONSE_END,
    THINK_START,
    THINK_END,
)
