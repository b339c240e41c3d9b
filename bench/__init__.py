"""Benchmarks (``make bench``): figures the issues name, against baselines run alongside."""
