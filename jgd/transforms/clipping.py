"""Clipping beyond ``clip``/``clip_by_global_norm``: clip_by_block_rms,
adaptive_grad_clip, per_example_global_norm_clip.
"""

__all__: list[str] = []
