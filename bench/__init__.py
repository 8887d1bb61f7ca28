"""Benchmarks: measured quality and speed, always next to a reference from the same run."""
