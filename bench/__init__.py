"""`make bench`: our node beside the official SDK's own server, measured as ratios.

See docs/benchmarks.md for the latest report and `python -m bench --help`.
"""
