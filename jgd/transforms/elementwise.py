"""Small element-wise blocks: sign, rprop, optimistic gradient, polyak,
noise, ema, centralize, zero_nans, set_to_zero, stateless and friends.
"""

__all__: list[str] = []
