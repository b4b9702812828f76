"""Experiments built on the library (the command line writes their results)."""
