"""What a storyboard file may set under `settings:`.

Anyone who can drop files into the source writes `storyboard.yaml`, so its `settings:` block
is untrusted input. Every field of `Settings` is classified here, in one table:

- **allowed**: how the video looks and sounds, and how its words are read (within each
  field's own range);
- **tighten**: only made stricter than the run's own configuration (the safety screen turned
  on, its threshold lowered, words added to its blocklist; approval turned on);
- **refused**: anything that names a location, path, URI, bucket or cache; a service,
  endpoint, model folder or device; concurrency, rate limits, retries, timeouts, sizes of
  work; upload limits. Only the run's own `--config` may set these.

A test walks every field of `Settings`, so no new setting escapes the decision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel

from domain.errors import ConfigurationError

Policy = Literal["allowed", "tighten", "refused"]

_ALLOWED: tuple[str, ...] = (
    "transcription.beam_size",
    "transcription.packed_beam_size",
    "transcription.vad_filter",
    "transcription.no_speech_threshold",
    "transcription.language",
    "transcription.pack_short_scenes",
    "transcription.word_timestamps",
    "generation.image_model",
    "generation.fallback_models",
    "generation.cfg_scale",
    "generation.sampler",
    "generation.steps",
    "generation.svd_cfg_scale",
    "generation.motion_bucket_id",
    "generation.local.steps",
    "generation.local.guidance_scale",
    "generation.local.clip_width",
    "generation.local.clip_height",
    "generation.local.clip_steps",
    "generation.local.frames",
    "generation.local.fps",
    "generation.local.noise_aug_strength",
    "generation.local.clip_guidance_scale",
    "generation.local.clip_length",
    "generation.local.video_lora_steps",
    "generation.local.video_lora_guidance",
    "assembly.width",
    "assembly.height",
    "assembly.fps",
    "assembly.captions",
    "assembly.captions_by_word",
    "assembly.scene_labels",
    "assembly.fit",
    "assembly.crossfade_s",
    "assembly.placeholder_seconds",
    "assembly.video_crf",
    "assembly.audio_bitrate",
    "assembly.sample_rate",
    "assembly.loudness_dbfs",
    "assembly.music_db",
    "assembly.board_page",
    "assembly.exports",
)
_SAFETY_LEVEL = {"off": 0, "auto": 1, "on": 2}
_TIGHTER: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "safety.enabled": (
        lambda base, new: _SAFETY_LEVEL[new] >= _SAFETY_LEVEL[base],
        "may only turn the safety screen on",
    ),
    "safety.classifier": (lambda base, new: new or not base, "may only turn the classifier on"),
    "safety.threshold": (lambda base, new: new <= base, "may only lower the threshold"),
    "generation.approve_images": (lambda base, new: new or not base, "may only turn approval on"),
}
"""Each tighten-only setting: whether a new value is at least as strict, and what to say."""
_TIGHTEN: tuple[str, ...] = (*_TIGHTER, "safety.blocklist")  # added to by with_added_blocklist
_REFUSED: tuple[str, ...] = (
    "cache_dir",
    "shared_cache",
    "cache.max_gb",
    "transcription.engine",
    "transcription.model",
    "transcription.device",
    "transcription.compute_type",
    "transcription.max_recording_s",
    "transcription.scenes_per_task",
    "transcription.temperatures",
    "generation.backend",
    "generation.concurrency",
    "generation.requests_per_minute",
    "generation.request_timeout_s",
    "generation.poll_deadline_s",
    "generation.max_attempts",
    "generation.resend_unknown_outcomes",
    "generation.approval_timeout_s",
    "generation.approval_poll_s",
    "generation.local.image_model",
    "generation.local.video_model",
    "generation.local.max_clips_per_scene",
    "generation.local.video_lora",
    "generation.local.ip_adapter",
    "generation.local.cache",
    "generation.local.cache_threshold",
    "generation.local.attention",
    "generation.local.revision",
    "generation.local.device",
    "generation.local.dtype",
    "generation.local.batch_size",
    "generation.local.decode_chunk_size",
    "generation.local.compile",
    "generation.local.cpu_offload",
    "assembly.render_workers",
    "assembly.video_preset",
    "watch",
    "studio",
    "dask",
    "safety.blocklist_file",
)
STORYBOARD_POLICY: dict[str, Policy] = {
    **dict.fromkeys(_ALLOWED, "allowed"),
    **dict.fromkeys(_TIGHTEN, "tighten"),
    **dict.fromkeys(_REFUSED, "refused"),
}
"""Each setting by its dotted path; a whole section (`watch`) stands for all its fields."""


def policy_of(path: str) -> Policy | None:
    """The policy of the setting at `path` (or of the section holding it); None if unknown."""
    parts = path.split(".")
    for length in range(len(parts), 0, -1):
        found = STORYBOARD_POLICY.get(".".join(parts[:length]))
        if found is not None:
            return found
    return None


def _requested_paths(requested: Mapping[str, Any], model: type[BaseModel]) -> Iterator[str]:
    """The dotted path of each setting in `requested`, nested mappings of sections opened."""
    for key, value in requested.items():
        field = model.model_fields.get(str(key))
        section = field.annotation if field is not None else None
        opened = isinstance(section, type) and issubclass(section, BaseModel)
        if opened and isinstance(value, Mapping):
            yield from (f"{key}.{inner}" for inner in _requested_paths(value, section))  # type: ignore[arg-type]
            continue
        yield str(key)


def _refuse(where: str, path: str, why: str) -> ConfigurationError:
    return ConfigurationError(f"{where}: settings.{path} {why}")


def check_storyboard_settings(
    requested: Mapping[str, Any], model: type[BaseModel], where: str
) -> None:
    """ConfigurationError naming the first refused setting in a storyboard's `settings:`.
    Unknown keys are left to the settings' own validation ("unknown key")."""
    for path in _requested_paths(requested, model):
        if policy_of(path) == "refused":
            raise _refuse(
                where, path, "may only be set by the run's own --config, not by a storyboard file"
            )


def _value(settings: BaseModel, path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


def check_tightened(base: BaseModel, merged: BaseModel, where: str) -> None:
    """ConfigurationError unless each tighten-only setting of `merged` is at least as strict
    as in `base` (the blocklist is merged by `with_added_blocklist`, never replaced)."""
    for path, (tighter, how) in _TIGHTER.items():
        before, after = _value(base, path), _value(merged, path)
        if before != after and not tighter(before, after):
            raise _refuse(where, path, f"{how} ({before!r} here, not {after!r})")


def with_added_blocklist(requested: Mapping[str, Any], base: tuple[str, ...]) -> dict[str, Any]:
    """`requested` with its `safety.blocklist` added to the run's own rather than replacing it."""
    safety = requested.get("safety")
    if not isinstance(safety, Mapping) or "blocklist" not in safety:
        return dict(requested)
    added = safety["blocklist"]
    words = list(dict.fromkeys([*base, *added])) if isinstance(added, list | tuple) else added
    return {**requested, "safety": {**safety, "blocklist": words}}
