"""Optimizers whose math needs each leaf whole (per-matrix norms, trust
ratios, factored moments): lamb, lars, fromage, adafactor, sm3, novograd.
"""

__all__: list[str] = []
