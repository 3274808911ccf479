"""Blocks that need each leaf whole: scale_by_trust_ratio, scale_by_factored_rms,
scale_by_sm3, scale_by_novograd, scale_by_param_block_norm/rms, with their states.
"""

__all__: list[str] = []
