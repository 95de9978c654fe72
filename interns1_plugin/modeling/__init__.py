"""Plain-torch pieces of the Intern-S1 models that both engines' model classes build on.

Nothing here imports an engine: what differs between vLLM and LMDeploy (attention, parallel
linears, the language model) lives in each engine's model package; what is the same maths with
the same tensor names on both (the pixel shuffle, Pro's replicated time-series encoder) lives once,
here.
"""
