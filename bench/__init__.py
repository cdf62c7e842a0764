"""Benchmarks: `python -m bench.generate` builds a synthetic MSP, `python -m bench.run` measures."""
