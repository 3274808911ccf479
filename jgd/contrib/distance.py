"""Learning-rate-free methods from distances: prodigy, dog, dowg."""

__all__: list[str] = []
