"""L-BFGS with its zoom line search."""

__all__: list[str] = []
