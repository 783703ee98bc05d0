"""Benchmarks of issue 8: each measures the product's figure and, in the same run, the
ceiling it should be compared with (a bare library doing the same work), and prints their
ratio. None of them is a timed test; their figures go to ``docs/BENCHMARKS.md``."""
