"""Plain-torch pieces of the Intern-S1 models that both engines' model classes build on.

Nothing here imports an engine: what differs between vLLM and LMDeploy (attention, parallel
linears, the language model, weight loading) lives in each engine's model package; what is the
same maths with the same tensor names on both lives once, here: Intern-S1's config reading and
pixel shuffle, Pro's vision patch embedding, patch positions (position-embedding interpolation,
2-D rotary angles) and config checks, and Pro's replicated time-series encoder.
"""
