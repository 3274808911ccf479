"""Sophia: clipped second-order steps from a Hessian estimate."""

__all__: list[str] = []
