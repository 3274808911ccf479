"""Sign, noise and step-size variants of SGD: sign_sgd, signum, noisy_sgd,
polyak_sgd, rprop, optimistic_gradient_descent, optimistic_adam_v2.
"""

__all__: list[str] = []
