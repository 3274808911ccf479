"""Moment-based blocks of Adam's relatives: scale_by_amsgrad, scale_by_adamax,
scale_by_belief, scale_by_radam, scale_by_yogi, scale_by_adan, scale_by_lion,
scale_by_adadelta, with their states.
"""

__all__: list[str] = []
