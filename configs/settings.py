"""Typed settings for a run, and the loading of `storyboard.yaml`.

The fields below are the one source of every default and range. A `--config FILE`, then a
storyboard file's `settings:` block, then command-line flags are merged over them, key by
key. `configs/defaults.yaml` documents the defaults with comments; a test keeps it equal to
these fields. Every model forbids unknown keys so that a typo is an error, not a silently
ignored setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from domain.errors import ConfigurationError
from domain.media import ImageModel
from domain.storyboard import StoryboardSpec

BackendName = Literal["auto", "nvidia", "nim", "local", "draft"]
FitMethod = Literal["pingpong", "stretch", "hold", "kenburns"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TranscriptionSettings(_Strict):
    engine: Literal["faster-whisper", "openai-whisper"] = "faster-whisper"
    model: str = "base"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "auto"
    beam_size: int = Field(default=5, ge=1, le=10)
    packed_beam_size: int = Field(default=1, ge=1, le=10)
    vad_filter: bool = True
    no_speech_threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    language: str | None = None
    pack_short_scenes: bool = True
    word_timestamps: bool = False
    """Ask Whisper for each word's time (packed windows always do). On whenever
    `assembly.captions_by_word` is (`Settings`), and then part of the transcript cache key."""
    max_recording_s: float = Field(default=900.0, gt=0.0)
    scenes_per_task: int = Field(default=40, ge=1)
    temperatures: tuple[Annotated[float, Field(ge=0.0, le=1.0)], ...] = Field(
        default=(0.0, 0.4), min_length=1, max_length=6
    )
    """What Whisper falls back through when a reading fails its own tests: each is another
    decode, so their number bounds what one unclear scene costs."""


class LocalGenerationSettings(_Strict):
    """`--backend local`: diffusers on this machine. Its own ranges: the hosted API's limits do
    not apply here."""

    image_model: str | None = None
    """A text-to-image pipeline folder (saved by diffusers, or a fine-tuned one) or a hub id
    in the Hugging Face cache: SDXL, SD 1.x/2.x, SD-Turbo, SD3.5, FLUX."""
    video_model: str | None = None
    """An image-to-video pipeline folder or hub id (Wan 2.1/2.2, LTX-Video, SVD/SVD-XT:
    `clients/generation/local/video_families.py`); None: a slow push-in over the image."""
    revision: str | None = None
    device: Literal["auto", "cuda", "cpu"] = "auto"
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    steps: int = Field(default=30, ge=1, le=200)
    guidance_scale: float = Field(default=5.0, ge=0.0, le=30.0)
    batch_size: int = Field(default=1, ge=1, le=16)
    clip_width: int | None = Field(default=None, ge=16, le=2048)
    clip_height: int | None = Field(default=None, ge=16, le=2048)
    """None: the video family's own size (SVD 1024x576, Wan 832x480, LTX 704x480); a size the
    family cannot take is rounded to its multiple."""
    clip_steps: int | None = Field(default=None, ge=1, le=100)
    clip_guidance_scale: float | None = Field(default=None, ge=0.0, le=30.0)
    """None: the family's own (SVD takes `generation.svd_cfg_scale`)."""
    frames: int | None = Field(default=None, ge=2, le=257)
    """A clip's frames with `clip_length: fixed` (None: the family's own, SVD 25)."""
    fps: int | None = Field(default=None, ge=1, le=60)
    """None: the family's own (SVD 6, Wan 2.1 16, Wan 2.2 and LTX 24)."""
    clip_length: Literal["narration", "fixed"] | None = None
    """narration: a clip as long as the scene's narration (more clips continued from the last
    frame, up to `max_clips_per_scene`); fixed: `frames` frames. None: narration for the
    text-steered families, fixed for SVD. A scene's own `frames:` wins."""
    max_clips_per_scene: int = Field(default=3, ge=1, le=10)
    ip_adapter: str | None = None
    """An IP-Adapter folder (`ip-adapter.safetensors` and its CLIP image encoder in
    `image_encoder/`) for an SDXL or SD 1.x image model: characters drawn from their reference
    pictures. None: characters are named, not drawn from references (unless the image model
    is a reference-editing one, FLUX.1 Kontext, FLUX.2 klein or Qwen-Image-Edit, which takes
    the references as its input pictures and needs no adapter)."""
    video_lora: str | None = None
    """A LoRA for the video model (a .safetensors file or a folder), such as a distilled
    few-step one (LightX2V-style 4-step Wan LoRAs); its steps and guidance below."""
    video_lora_steps: int | None = Field(default=None, ge=1, le=100)
    video_lora_guidance: float | None = Field(default=None, ge=0.0, le=30.0)
    noise_aug_strength: float = Field(default=0.02, ge=0.0, le=1.0)
    decode_chunk_size: int = Field(default=8, ge=1, le=64)
    compile: bool | Literal["regional"] = False
    """true: torch.compile the denoiser; regional: the repeated blocks of a transformer video
    family (Wan, LTX), compiled once and reused (CUDA only)."""
    cache: Literal["none", "first_block", "taylorseer"] = "none"
    """A diffusers cache hook on a transformer video family: skips transformer work between
    similar steps (faster, slightly different pixels)."""
    cache_threshold: float = Field(default=0.05, gt=0.0, le=1.0)
    """first_block: how far the first block's output may move before the rest is computed."""
    attention: Literal["auto", "sdpa", "flash", "sage"] = "auto"
    """The transformer video families' attention backend; auto: flash-attention on a GPU when
    installed, else PyTorch's SDPA."""
    cpu_offload: Literal["auto", "on", "off"] = "auto"


class GenerationSettings(_Strict):
    backend: BackendName = "auto"
    image_model: ImageModel = "sdxl"
    fallback_models: tuple[ImageModel, ...] = ()
    """nvidia: the models to switch to, in order, when `image_model` is retired."""
    concurrency: int = Field(default=4, ge=1, le=64)
    cfg_scale: float | None = Field(default=None, ge=0.0, le=35.0)
    """None: the image model's default. The hosted models' own ranges are checked by the
    nvidia backend at load time (clients/generation/schemas.py)."""
    sampler: Literal["DDIM", "K_EULER_ANCESTRAL", "K_LMS", "K_DPM_2_ANCESTRAL"] = (
        "K_DPM_2_ANCESTRAL"
    )
    steps: int | None = Field(default=None, ge=1, le=100)
    svd_cfg_scale: float = Field(default=1.8, ge=0.0, le=9.0)
    motion_bucket_id: int = 127
    requests_per_minute: float = Field(default=40.0, gt=0.0, le=10_000.0)
    request_timeout_s: float = Field(default=120.0, ge=3.0)
    """The read timeout. The gateway holds a request up to half of it, at least 1 s
    (`NVCF-POLL-SECONDS`), and its answer needs time to arrive: below 3 s the hold would use
    up the timeout, and every accepted job would end "outcome unknown"."""
    poll_deadline_s: float = Field(default=900.0, gt=0.0)
    max_attempts: int = Field(default=6, ge=1, le=20)
    resend_unknown_outcomes: int = Field(default=3, ge=0, le=100)
    """Requests whose answer was lost after sending that a run may send again (each may be
    paid twice; run.json lists them): 0 for never."""
    approve_images: bool = False
    """Pause after the images, for a reviewer to approve each (Prefect UI or studio) before
    any motion clip is made (README "Approve the pictures first")."""
    approval_timeout_s: int = Field(default=86_400, ge=1)
    """How long each pause waits for an answer; scenes still unapproved then end failed."""
    approval_poll_s: int = Field(default=5, ge=1, le=60)
    """How often the paused run looks for the answer."""
    local: LocalGenerationSettings = LocalGenerationSettings()


class AssemblySettings(_Strict):
    width: int = Field(default=1024, ge=64, le=4096, multiple_of=2)
    height: int = Field(default=576, ge=64, le=4096, multiple_of=2)
    fps: int = Field(default=24, ge=1, le=60)
    captions: bool = True
    captions_by_word: bool = False
    """Captions (burned in, .srt, .vtt) a few words at a time, following the words' times,
    instead of Whisper's whole segments. Turns on `transcription.word_timestamps`."""
    scene_labels: bool = True
    fit: FitMethod = "pingpong"
    crossfade_s: float = Field(default=0.0, ge=0.0, le=2.0)
    render_workers: int | None = Field(default=None, ge=1, le=32)
    placeholder_seconds: float = Field(default=2.0, gt=0.0, le=60.0)
    video_preset: str = "veryfast"
    video_crf: int = Field(default=23, ge=0, le=51)
    audio_bitrate: str = "128k"
    sample_rate: int = Field(default=48000, ge=8000, le=96000)
    loudness_dbfs: float | None = Field(default=-20.0, ge=-60.0, le=0.0)
    music_db: float = Field(default=-18.0, ge=-60.0, le=0.0)
    board_page: Literal["a4", "letter"] = "a4"
    """The page size of `storyboard.pdf`, the printable board."""
    exports: tuple[Literal["fcp_xml", "edl"], ...] = ()
    """Editor timelines besides `storyboard.otio` (always written): Final Cut Pro 7 XML
    (`storyboard.xml`, for Premiere and Resolve too) and CMX 3600 EDL (`storyboard.edl`)."""


class WatchSettings(_Strict):
    interval_s: float = Field(default=60.0, gt=0.0)
    cron: str | None = None
    settle_s: float = Field(default=30.0, ge=0.0)


class StudioSettings(_Strict):
    """`storyboard studio`, the review web application (README "Review studio")."""

    host: str = "127.0.0.1"
    """Where it listens (`--host`); an address other than loopback needs
    STORYBOARD_STUDIO_TOKEN."""
    port: int = Field(default=8700, ge=1, le=65535)
    max_upload_mb: float = Field(default=50.0, gt=0.0, le=2048.0)
    """A recording uploaded or recorded in the browser may be at most this large (else 413)."""


class DaskSettings(_Strict):
    workers: int | None = Field(default=None, ge=1)
    threads_per_worker: int = Field(default=2, ge=1)
    worker_resources: dict[str, float] = Field(default_factory=dict)
    transcription_resources: dict[str, float] = Field(default_factory=dict)
    generation_resources: dict[str, float] = Field(default_factory=dict)
    """What a generate task asks for, e.g. {GPU: 1} with `--backend local`."""


class SafetySettings(_Strict):
    """The screen every prompt passes before its first request (README "The safety screen")."""

    enabled: Literal["auto", "on", "off"] = "auto"
    """auto: on for every backend but draft."""
    classifier: bool = True
    """Score each prompt and narration sentence with the bundled offline classifier."""
    threshold: float = Field(default=0.9, gt=0.0, le=1.0)
    """A score at or above this blocks the scene."""
    blocklist: tuple[str, ...] = ()
    """Words and phrases that block a scene (whole words, any case); storyboard.yaml's
    `blocklist:` adds its own."""
    blocklist_file: Path | None = None
    """A file of more, one a line (`#` comments); a relative path is from the working folder."""


class CacheSettings(_Strict):
    """How large the local cache may grow (README "The cache")."""

    max_gb: float | None = Field(default=50.0, gt=0.0)
    """After every run the least recently used of what the cache can make again (the assembly
    store, staging, mirrored S3 sources) is removed down to this size; None: no cap.
    `storyboard cache prune` does the same on demand, and more when asked."""


class Settings(_Strict):
    transcription: TranscriptionSettings = TranscriptionSettings()
    generation: GenerationSettings = GenerationSettings()
    assembly: AssemblySettings = AssemblySettings()
    watch: WatchSettings = WatchSettings()
    studio: StudioSettings = StudioSettings()
    dask: DaskSettings = DaskSettings()
    safety: SafetySettings = SafetySettings()
    cache: CacheSettings = CacheSettings()
    cache_dir: Path = Field(default_factory=lambda: default_cache_dir())
    shared_cache: str | None = Field(default_factory=lambda: shared_cache_uri())
    """An S3 prefix every worker and machine shares the content cache through
    (`STORYBOARD_CACHE_DIR=s3://bucket/prefix/`); `cache_dir` then is this machine's copy."""

    @model_validator(mode="before")
    @classmethod
    def _words_for_captions(cls, data: Any) -> Any:
        """Captions by word need Whisper's word times: `assembly.captions_by_word` turns on
        `transcription.word_timestamps`, so every caller (the flow, `storyboard transcribe`)
        transcribes, and keys its cache, alike."""
        if not isinstance(data, Mapping) or not _captions_by_word(data.get("assembly")):
            return data
        transcription = data.get("transcription", {})
        if isinstance(transcription, TranscriptionSettings):
            transcription = transcription.model_copy(update={"word_timestamps": True})
        elif isinstance(transcription, Mapping):
            transcription = {**transcription, "word_timestamps": True}
        return {**data, "transcription": transcription}


_BOOL = TypeAdapter(bool)


def _captions_by_word(assembly: object) -> bool:
    if isinstance(assembly, AssemblySettings):
        return assembly.captions_by_word
    if not isinstance(assembly, Mapping):
        return False
    try:
        return _BOOL.validate_python(assembly.get("captions_by_word", False))
    except ValidationError:
        return False  # the field's own validation reports it


def shared_cache_uri() -> str | None:
    configured = os.environ.get("STORYBOARD_CACHE_DIR", "")
    return configured if configured.startswith("s3://") else None


def default_cache_dir() -> Path:
    configured = os.environ.get("STORYBOARD_CACHE_DIR")
    if configured and not configured.startswith("s3://"):
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "storyboard"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot be read ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigurationError(f"{path}: not valid YAML{where}") from None
    except RecursionError:
        raise ConfigurationError(f"{path}: nested too deeply to be read") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: expected a mapping at the top level")
    return data


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"unknown key '{location}'"
    return f"{location}: {first['msg']}"


def load_settings(
    config_file: Path | None = None,
    *overrides: Mapping[str, Any],
) -> Settings:
    """The defaults, then `config_file`, then each mapping in `overrides`, validated."""
    data: dict[str, Any] = {}
    source = "configuration"
    if config_file is not None:
        data = _merge(data, _read_yaml(config_file))
        source = str(config_file)
    for override in overrides:
        data = _merge(data, override)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(f"{source}: {_describe(exc)}") from None


def apply_storyboard_settings(
    base: Settings, storyboard: Mapping[str, Any], where: str
) -> Settings:
    """`base` with a storyboard file's `settings:` merged in as far as a storyboard may set
    them (configs/storyboard_policy.py): ConfigurationError naming the first key it may not.
    Applying the same block twice gives the same settings."""
    from configs.storyboard_policy import (
        check_storyboard_settings,
        check_tightened,
        with_added_blocklist,
    )

    if not storyboard:
        return base
    check_storyboard_settings(storyboard, Settings, where)
    requested = with_added_blocklist(storyboard, base.safety.blocklist)
    try:
        merged = Settings.model_validate(_merge(base.model_dump(), requested))
    except ValidationError as exc:
        raise ConfigurationError(f"{where}: settings: {_describe(exc)}") from None
    check_tightened(base, merged, where)
    return merged


def load_storyboard_spec(path: Path) -> StoryboardSpec:
    data = _read_yaml(path)
    try:
        spec = StoryboardSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(f"{path}: {_describe(exc)}") from None
    seen: set[str] = set()
    for scene in spec.scenes:
        if scene.id in seen:
            raise ConfigurationError(f"{path}: scene '{scene.id}' is listed twice")
        seen.add(scene.id)
    return spec
