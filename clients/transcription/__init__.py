"""Whisper engines behind one interface (`types.py`), their weights and their devices."""
