"""Muon: momentum orthogonalised by Newton-Schulz iterations (scale_by_muon, muon)."""

__all__: list[str] = []
