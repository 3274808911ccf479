"""Schedule-free optimizers: schedule_free, schedule_free_adamw,
schedule_free_sgd, schedule_free_eval_params.
"""

__all__: list[str] = []
