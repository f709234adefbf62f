"""Typed settings (`settings.py`): the one source of every default."""
