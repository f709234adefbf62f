"""The `local` backend: diffusers on this machine's GPU (or CPU). `backend.py` is the backend;
beside it what only it needs: `models.py` (finding, naming and loading models), `batching.py`
(scenes through the denoiser together), `prompts.py` (the prompt as CLIP reads it) and
`speed.py` (the speed recipe the benchmark measures)."""

from clients.generation.local.backend import KIND

__all__ = ["KIND"]
