"""vLLM layers as the plugin's vision towers and projectors build them.

Each module keeps the attribute names its checkpoint's tensor names need (`fc1`, `linear_fc1`,
`linear_1`, ...); what is built under those names is built here once.
"""

from __future__ import annotations

from vllm.model_executor.layers.linear import ColumnParallelLinear, RowParallelLinear
from vllm.model_executor.layers.quantization import QuantizationConfig


def mlp_linears(
    in_size: int,
    hidden_size: int,
    out_size: int,
    *,
    quant_config: QuantizationConfig | None,
    disable_tp: bool,
    prefixes: tuple[str, str],
) -> tuple[ColumnParallelLinear, RowParallelLinear]:
    """The two linears of an MLP with bias: column-parallel in, row-parallel out.

    The pair needs no gather in between: each rank's slice of the hidden activations feeds its
    slice of the second linear, whose row-parallel output is all-reduced. `disable_tp` keeps both
    whole on every rank (the towers' data-parallel mode). `prefixes` name the two linears for
    quantization and weight loading.
    """
    up_prefix, down_prefix = prefixes
    up = ColumnParallelLinear(
        in_size,
        hidden_size,
        bias=True,
        quant_config=quant_config,
        prefix=up_prefix,
        disable_tp=disable_tp,
    )
    down = RowParallelLinear(
        hidden_size,
        out_size,
        bias=True,
        quant_config=quant_config,
        prefix=down_prefix,
        disable_tp=disable_tp,
    )
    return up, down
