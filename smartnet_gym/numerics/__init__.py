"""Numerical kernels shared by the grid models and the market clearing (no grid or market types here)."""
