"""Benchmarks (scripts, not tests): ``python -m bench [NAME] [flags]``; see docs/benchmarks.md."""
