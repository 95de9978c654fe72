"""vLLM multimodal processing (placeholder expansion, pixels, profiling inputs) for Intern-S1."""
