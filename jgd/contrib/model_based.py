"""MoMo: model-based momentum (momo, momo_adam)."""

__all__: list[str] = []
