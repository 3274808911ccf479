"""Adam's relatives: nadam, nadamw, radam, amsgrad, adamax, adamaxw,
adabelief, adadelta, yogi, lion, adan.
"""

__all__: list[str] = []
