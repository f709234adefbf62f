"""Clients for what lies outside the pipeline: generation backends, Whisper, media, cache."""
