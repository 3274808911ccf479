"""Coin-betting and tuner methods: cocob, mechanize."""

__all__: list[str] = []
