"""The `local` backend: diffusers on this machine's GPU (or CPU). `backend.py` is the backend;
beside it what only it needs: `models.py` (finding, naming and loading models), `placement.py`
(the device, or offload when memory is short), `batching.py` (scenes through the denoiser
together), `prompts.py` (the prompt as CLIP reads it), `references.py` (characters from their
reference pictures, through `ip_adapter.py` or `reference_editing.py`), `video_families.py`
and `clips.py` (the image-to-video families and a scene's clip), `video_speed.py` (their
levers) and `speed.py` (the speed recipe the benchmark measures)."""

from clients.generation.local.backend import KIND

__all__ = ["KIND"]
