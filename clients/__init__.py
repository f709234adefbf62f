"""Clients for everything outside the pipeline's own code: generation backends, Whisper, media, cache."""
