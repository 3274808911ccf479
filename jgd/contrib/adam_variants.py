"""Adam variants from recent papers: adopt (scale_by_adopt), ademamix,
simplified_ademamix.
"""

__all__: list[str] = []
