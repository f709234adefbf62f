"""`--backend local`: any text-to-image pipeline, and an image-to-video one (Wan, LTX-Video, or
Stable Video Diffusion: `video_families.py`, `clips.py`), with diffusers on this machine's GPU
(or CPU).

One pipeline of each kind per process, loaded on first use and shared by every scene; scenes
that arrive together go through the denoiser together (`generation.local.batch_size`). The
speed levers are `speed.py`'s, the same the benchmark measures. A CUDA out-of-memory
error is retried once with the memory savers on (model offload to the CPU, VAE tiling,
attention slicing), then fails that scene with one line. Subjects (LoRA or DreamBooth weights)
are applied to every picture of the storyboard that names them, and their trigger word is added
to every prompt that lacks it; a prompt longer than CLIP reads loses narration, not its style
(`prompts.py`).
"""

from __future__ import annotations

import inspect
import io
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from clients.generation.backend import PUSH_IN, BackendKind
from clients.generation.local.batching import Batcher
from clients.generation.local.clips import (
    ClipPlan,
    Frames,
    continued_clips,
    plan_clip,
    svd_options,
    text_steered_options,
)
from clients.generation.local.ip_adapter import (
    ADAPTER_PIPELINES,
    AdapterSlot,
    reference_adapter,
)
from clients.generation.local.models import (
    ModelLocation,
    choose_device,
    choose_dtype,
    load_pipeline,
    locate_model,
    pipeline_class,
    torch_modules,
    weights_digest,
)
from clients.generation.local.placement import prepare_pipeline
from clients.generation.local.prompts import PromptFitter
from clients.generation.local.reference_editing import editing_references
from clients.generation.local.references import ReferenceDrawing
from clients.generation.local.video_families import SVD, recognise
from clients.generation.local.video_speed import (
    apply_video_levers,
    attention_backend,
    clip_levers,
    load_video_lora,
)
from clients.generation.ratelimit import RequestBudget
from clients.media.drawing import cover
from clients.media.video import CLIP_ENCODING, encode_frames, push_in_frames
from clients.stopping import stop_between_steps
from configs.settings import GenerationSettings, LocalGenerationSettings
from domain.errors import ConfigurationError, GenerationError, exception_reason
from domain.media import ClipRequest, GeneratedClip, GeneratedImage, ImageRequest, Subject

logger = logging.getLogger(__name__)
VIDEO_LORA = "generation.local.video_lora"
_Result = TypeVar("_Result")


def pipeline_size(width: int, height: int) -> tuple[int, int]:
    """The nearest size a latent-diffusion UNet accepts (multiples of 64, at least 64)."""
    return max(64, round(width / 64) * 64), max(64, round(height / 64) * 64)


class LocalDiffusersBackend:
    """Text to image and image to clip with diffusers pipelines on this machine."""

    name = "local"

    def __init__(self, settings: LocalGenerationSettings) -> None:
        if settings.image_model is None:
            raise ConfigurationError("--backend local needs generation.local.image_model")
        self.settings = settings
        self.image_model = locate_model(settings.image_model, settings.revision, "image_model")
        self.prompts = PromptFitter(self.image_model)
        self.video_model: ModelLocation | None = None
        self.video_family = SVD
        """The push-in over the picture is shaped like an SVD clip."""
        if settings.video_model is not None:
            self.video_model = locate_model(settings.video_model, settings.revision, "video_model")
            self.video_family = recognise(self.video_model.folder)
        self.device = choose_device(settings.device)
        self.dtype = choose_dtype(settings.dtype, self.device)
        self._pipelines: dict[str, Any] = {}
        self._loading = threading.Lock()
        self._memory_savers = False
        self._adapters: dict[str, str] = {}
        self._batcher = Batcher(self._run_images, settings.batch_size)
        self._clip_lock = threading.Lock()
        self._references = reference_drawing(settings, self.image_model)

    # -- fingerprints: everything that determines a result ----------------------------------

    def image_fingerprint(self, request: ImageRequest) -> dict[str, Any]:
        return {
            "model": self.image_model.identity,
            "prompt": self.prompts.sent(request).text,
            "negative_prompt": request.negative_prompt,
            "seed": request.seed,
            "size": pipeline_size(request.width, request.height),
            "steps": self.settings.steps,
            "guidance_scale": self.settings.guidance_scale,
            "subjects": [(weights_digest(Path(s.path)), s.scale) for s in request.subjects],
            "dtype": str(self.dtype),
            **self._references_fingerprint(request),
        }

    def _references_fingerprint(self, request: ImageRequest) -> dict[str, Any]:
        """A scene drawn from references is keyed by what of them shapes it; one without (or a
        model that draws none) keeps the key it always had."""
        if self._references is None:
            return {}
        return self._references.fingerprint(request.characters)

    def image_model_name(self, request: ImageRequest) -> str:
        return str(self.settings.image_model)

    def clip_model_name(self) -> str:
        return str(self.settings.video_model) if self.video_model else PUSH_IN

    def clip_fingerprint(self, request: ClipRequest) -> dict[str, Any]:
        plan = plan_clip(self.video_family, request, self.settings)
        if self.video_family is SVD:  # SVD and the push-in keep the keys they always had
            options = svd_options(plan, request, self.settings)
        else:
            options = {**plan.fingerprint(), **clip_levers(self.settings, self.device)}
            if self.settings.video_lora:
                lora = Path(self.settings.video_lora)
                options["video_lora"] = weights_digest(lora, VIDEO_LORA)
        return {
            **request.fingerprint(),
            "model": self.video_model.identity if self.video_model else PUSH_IN,
            **options,
            "dtype": str(self.dtype),
        }

    # -- generation ---------------------------------------------------------------------------

    def generate_image(self, request: ImageRequest) -> GeneratedImage:
        image = self._batcher.submit(request)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        sent = self.prompts.sent(request)
        return GeneratedImage(
            buffer.getvalue(),
            "image/png",
            request.seed,
            api_calls=0,
            prompt=sent.text,
            prompt_note=sent.note,
        )

    def generate_clip(self, request: ClipRequest) -> GeneratedClip:
        plan = plan_clip(self.video_family, request, self.settings)
        still = cover(Image.open(io.BytesIO(request.image)).convert("RGB"), plan.width, plan.height)
        if self.video_model is None:
            frames = push_in_frames(still, request.seed, plan.frames, plan.width, plan.height)
        else:
            with self._clip_lock:
                frames = self._with_memory_retry(lambda: self._run_clip(still, request, plan))
        return GeneratedClip(
            data=encode_frames(frames, plan.fps, CLIP_ENCODING),
            seed=request.seed,
            api_calls=0,
            model=self.clip_model_name(),
            prompt=plan.prompt,
        )

    def _run_clip(self, still: Image.Image, request: ClipRequest, plan: ClipPlan) -> Frames:
        torch, _ = torch_modules()
        pipeline = self._pipeline("video")
        family = self.video_family
        if family is SVD:
            chunk = min(self.settings.decode_chunk_size, plan.frames)
            options = {**svd_options(plan, request, self.settings), "decode_chunk_size": chunk}
        else:
            options = text_steered_options(plan, family)

        def one_clip(image: Image.Image, seed: int) -> Any:
            generator = torch.Generator(device="cpu").manual_seed(seed)
            with torch.inference_mode():
                result = pipeline(
                    image=image, generator=generator, **options, **stoppable(pipeline)
                )
            return result.frames[0]

        return continued_clips(still, plan, one_clip, request.seed)

    def _run_images(self, requests: list[ImageRequest]) -> list[Image.Image]:
        """One denoiser pass for several scenes of the same shape."""
        return self._with_memory_retry(lambda: self._images_once(requests))

    def _images_once(self, requests: list[ImageRequest]) -> list[Image.Image]:
        torch, _ = torch_modules()
        pipeline = self._pipeline("image")
        self._use_subjects(pipeline, requests[0].subjects)
        width, height = pipeline_size(requests[0].width, requests[0].height)
        options: dict[str, Any] = {
            "prompt": [self.prompts.sent(r).text for r in requests],
            "num_inference_steps": self.settings.steps,
            "guidance_scale": self.settings.guidance_scale,
            "width": width,
            "height": height,
            "generator": [torch.Generator(device="cpu").manual_seed(r.seed) for r in requests],
        }
        takes = inspect.signature(pipeline.__call__).parameters
        if "negative_prompt" in takes:
            options["negative_prompt"] = [r.negative_prompt for r in requests]
        if "max_area" in takes:  # Kontext scales to `max_area` whatever the size asked for
            options["max_area"] = width * height
        if self._references is not None:
            characters = requests[0].characters
            options |= self._references.call_options(pipeline, characters, (width, height))
        with torch.inference_mode():
            images: list[Image.Image] = pipeline(**options, **stoppable(pipeline)).images
        return [image.convert("RGB") for image in images]

    # -- pipelines, subjects, memory ----------------------------------------------------------

    def _pipeline(self, kind: str) -> Any:
        with self._loading:
            if kind not in self._pipelines:
                location = self.image_model if kind == "image" else self.video_model
                assert location is not None
                loader = self.video_family.loader if kind == "video" else None
                pipeline = prepare_pipeline(
                    load_pipeline(location, self.dtype, loader),
                    self.settings,
                    self.device,
                    self.dtype,
                    self._memory_savers,
                )
                if kind == "image" and isinstance(self._references, AdapterSlot):
                    self._references.loaded = False
                if kind == "video":
                    load_video_lora(pipeline, self.settings)
                    apply_video_levers(pipeline, self.settings, self.device)
                self._pipelines[kind] = pipeline
            return self._pipelines[kind]

    def _use_subjects(self, pipeline: Any, subjects: tuple[Subject, ...]) -> None:
        if not subjects:
            if self._adapters:
                pipeline.disable_lora()
            return
        names = []
        for subject in subjects:
            if subject.path not in self._adapters:
                name = f"subject{len(self._adapters)}"
                try:
                    pipeline.load_lora_weights(subject.path, adapter_name=name)
                except (OSError, ValueError, KeyError, RuntimeError) as exc:
                    raise ConfigurationError(
                        f"subject {subject.path}: does not fit the image model (made for "
                        f"another model family?): {exception_reason(exc)}"
                    ) from None
                self._adapters[subject.path] = name
            names.append(self._adapters[subject.path])
        pipeline.enable_lora()
        pipeline.set_adapters(names, adapter_weights=[s.scale for s in subjects])

    def _with_memory_retry(self, call: Callable[[], _Result]) -> _Result:
        torch, _ = torch_modules()
        try:
            return call()
        except torch.cuda.OutOfMemoryError:
            if self._memory_savers:
                raise GenerationError("out of GPU memory, even with the memory savers on") from None
        logger.warning("out of GPU memory: retrying once with CPU offload and VAE tiling")
        with self._loading:
            self._memory_savers = True
            self._pipelines.clear()
        torch.cuda.empty_cache()
        try:
            return call()
        except torch.cuda.OutOfMemoryError:
            raise GenerationError("out of GPU memory, even with the memory savers on") from None


def stoppable(pipeline: Any) -> dict[str, Any]:
    """The call option that ends `pipeline` after the step in flight once the command is told
    to stop (every diffusers pipeline of this backend takes it; one that does not runs on)."""
    if "callback_on_step_end" in inspect.signature(pipeline.__call__).parameters:
        return {"callback_on_step_end": stop_between_steps}
    return {}


def create(settings: GenerationSettings, limiter: RequestBudget) -> LocalDiffusersBackend:
    return LocalDiffusersBackend(settings.local)


def check_models(settings: GenerationSettings) -> None:
    """Before any work: torch and diffusers installed, both models where they are said to be."""
    torch_modules()
    local = settings.local
    if local.image_model is None:
        raise ConfigurationError("--backend local needs generation.local.image_model")
    locate_model(local.image_model, local.revision, "generation.local.image_model")
    if local.video_model is not None:
        location = locate_model(local.video_model, local.revision, "generation.local.video_model")
        recognise(location.folder)
        attention_backend(local.attention, "cpu")  # a backend asked for is installed
    reference_adapter(local.ip_adapter)  # complete, or one line naming what is missing
    if local.video_lora is not None:
        weights_digest(Path(local.video_lora), VIDEO_LORA)  # there, or one line naming it


def follows_motion_text(settings: GenerationSettings) -> bool:
    local = settings.local
    if local.video_model is None:
        return False
    return recognise(
        locate_model(local.video_model, local.revision, "video_model").folder
    ).takes_text


def reference_drawing(
    settings: LocalGenerationSettings, image_model: ModelLocation
) -> ReferenceDrawing | None:
    """How this image model draws characters from their references: as its input pictures (a
    reference-editing model), through the IP-Adapter (SDXL, SD 1.x), or not at all."""
    kind = pipeline_class(image_model.folder)
    editing = editing_references(kind)
    if editing is not None:
        return editing
    adapter = reference_adapter(settings.ip_adapter)
    if adapter is not None and kind in ADAPTER_PIPELINES:
        return AdapterSlot(adapter)
    return None


def draws_references(settings: GenerationSettings) -> bool:
    local = settings.local
    if local.image_model is None:
        return False
    location = locate_model(local.image_model, local.revision, "image_model")
    return reference_drawing(local, location) is not None


KIND = BackendKind(
    name="local",
    create=create,
    check=check_models,
    paid=False,
    follows_motion_text=follows_motion_text,
    draws_references=draws_references,
)
