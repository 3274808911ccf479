"""L-BFGS's building blocks: scale_by_lbfgs, the zoom and backtracking line
searches and value_and_grad_from_state.
"""

__all__: list[str] = []
