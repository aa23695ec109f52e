"""Deterministic model families for the demo, the tests and the benchmarks (real coqui-tts models, random weights)."""
