"""biocount's benchmarks: ``python -m bench NAME`` (see docs/performance.md)."""
