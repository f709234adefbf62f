"""NVIDIA's hosted models as data: every request field, its type, range and default, the prompt
length limit and the answer's shape, after NVIDIA's published OpenAPI reference
(`shared/reference/nvidia-genai-api.md`). Every schema there forbids unknown fields.

`request_body` builds each request body from this table and refuses a value outside it;
`settings_problem` finds such a value in the settings, so that the run stops at load time
(exit 2) instead of paying for a 422 per scene. The local backend has its own ranges.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from domain.errors import ConfigurationError, GenerationError

SEED_LIMIT = 2**32
PROMPT_LIMIT = 10_000
FLUX_SIDES = tuple(range(768, 1345, 64))
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "5:4", "4:5", "3:2", "2:3")
SAMPLERS = ("DDIM", "K_EULER_ANCESTRAL", "K_LMS", "K_DPM_2_ANCESTRAL")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FieldRule:
    """One request field: its type and the values the API accepts."""

    kind: type
    low: float | None = None
    low_open: bool = False
    """`low` itself is refused (cfg_scale must be above 1)."""
    high: float | None = None
    choices: tuple[Any, ...] = ()
    default: Any = None
    """What is sent when the settings leave it open (None: required or left out)."""

    def allowed(self) -> str:
        if self.choices:
            shown = ", ".join(str(choice) for choice in self.choices)
            return f"only {shown}" if len(self.choices) == 1 else f"one of {shown}"
        if self.low is not None and self.high is not None:
            if self.low_open:
                return f"above {_number(self.low)} and at most {_number(self.high)}"
            return f"{_number(self.low)} to {_number(self.high)}"
        if self.high is not None:
            return f"at most {_number(self.high)}"
        return f"at least {_number(self.low)}" if self.low is not None else self.kind.__name__

    def accepts(self, value: object) -> bool:
        if isinstance(value, bool) or not _of_kind(value, self.kind):
            return False
        if self.choices:
            return value in self.choices
        assert isinstance(value, int | float)
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high


def _of_kind(value: object, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _seed() -> FieldRule:
    return FieldRule(int, low=0, high=SEED_LIMIT - 1)


def _cfg(default: float) -> FieldRule:
    return FieldRule(float, low=1, low_open=True, high=9, default=default)


def _steps(low: int, high: int, default: int) -> FieldRule:
    return FieldRule(int, low=low, high=high, default=default)


def _fixed(value: Any) -> FieldRule:
    return FieldRule(type(value), choices=(value,), default=value)


@dataclass(frozen=True)
class ModelSchema:
    """One hosted model's request and answer."""

    name: str
    path: str
    fields: Mapping[str, FieldRule]
    answer: Literal["artifacts", "image", "video"]
    prompt_fields: tuple[str, ...] = ()
    """Text fields (each at most `prompt_limit` characters)."""
    text_prompts: int = 0
    """SDXL's `text_prompts` list: at most this many, weight 1 (prompt) or -1 (negative)."""
    prompt_limit: int = PROMPT_LIMIT
    settings: Mapping[str, str] = field(default_factory=dict)
    """Which `generation.*` setting feeds which field."""


_IMAGE_SETTINGS = {"cfg_scale": "cfg_scale", "steps": "steps"}
_FLUX_FIXED = {"mode": _fixed("base"), "samples": _fixed(1)}
_FLUX_SIZE = FieldRule(int, choices=FLUX_SIDES)

MODELS: dict[str, ModelSchema] = {
    "sdxl": ModelSchema(
        name="sdxl",
        path="stabilityai/stable-diffusion-xl",
        fields={
            "cfg_scale": _cfg(5.0),
            "sampler": FieldRule(str, choices=SAMPLERS, default="K_DPM_2_ANCESTRAL"),
            "seed": _seed(),
            "steps": _steps(5, 100, 25),
            "width": _fixed(1024),
            "height": _fixed(1024),
            "samples": _fixed(1),
        },
        answer="artifacts",
        text_prompts=2,
        settings={**_IMAGE_SETTINGS, "sampler": "sampler"},
    ),
    "sd3-medium": ModelSchema(
        name="sd3-medium",
        path="stabilityai/stable-diffusion-3-medium",
        fields={
            "aspect_ratio": FieldRule(str, choices=ASPECT_RATIOS, default="1:1"),
            "cfg_scale": _cfg(5.0),
            "steps": _steps(5, 100, 25),
            "seed": _seed(),
            "mode": _fixed("text-to-image"),
            "output_format": _fixed("jpeg"),
        },
        answer="image",
        prompt_fields=("prompt", "negative_prompt"),
        settings=_IMAGE_SETTINGS,
    ),
    "flux.1-dev": ModelSchema(
        name="flux.1-dev",
        path="black-forest-labs/flux.1-dev",
        fields={
            "width": _FLUX_SIZE,
            "height": _FLUX_SIZE,
            "cfg_scale": _cfg(5.0),
            "steps": _steps(5, 100, 25),
            "seed": _seed(),
            **_FLUX_FIXED,
        },
        answer="artifacts",
        prompt_fields=("prompt",),
        settings=_IMAGE_SETTINGS,
    ),
    "flux.1-schnell": ModelSchema(
        name="flux.1-schnell",
        path="black-forest-labs/flux.1-schnell",
        fields={
            "width": _FLUX_SIZE,
            "height": _FLUX_SIZE,
            "cfg_scale": FieldRule(float, choices=(0,), default=0.0),
            "steps": _steps(1, 4, 4),
            "seed": _seed(),
            **_FLUX_FIXED,
        },
        answer="artifacts",
        prompt_fields=("prompt",),
        settings=_IMAGE_SETTINGS,
    ),
}

SVD = ModelSchema(
    name="svd",
    path="stabilityai/stable-video-diffusion",
    fields={
        "seed": _seed(),
        "cfg_scale": _cfg(1.8),
        "motion_bucket_id": _fixed(127),
    },
    answer="video",
    settings={"svd_cfg_scale": "cfg_scale", "motion_bucket_id": "motion_bucket_id"},
)
"""`image` (a data URI or an asset reference) is added by the client, outside this table."""


def model_schema(name: str) -> ModelSchema:
    schema = MODELS.get(name)
    if schema is None:
        raise ConfigurationError(
            f"unknown image model '{name}' (choose one of {', '.join(MODELS)})"
        )
    return schema


def model_default(name: str, field_name: str) -> Any:
    """What `name` is sent for `field_name` when the settings leave it open."""
    rule = model_schema(name).fields.get(field_name)
    return None if rule is None else rule.default


def settings_problem(schema: ModelSchema, values: Mapping[str, Any], prefix: str) -> str | None:
    """A one-line reason when a set value in `values` (settings by name) is one `schema`'s
    model would refuse; None when all are accepted."""
    for setting, field_name in schema.settings.items():
        value = values.get(setting)
        rule = schema.fields[field_name]
        if value is not None and not rule.accepts(value):
            return (
                f"{prefix}{setting}: {value} is refused by {schema.path}"
                f" ({field_name} must be {rule.allowed()})"
            )
    return None


def request_body(schema: ModelSchema, values: Mapping[str, Any]) -> dict[str, Any]:
    """The body for `schema`'s model: each field from `values` or its default, checked.

    Fields a model does not have are left out; a value it would refuse raises GenerationError
    (the settings were checked at load time, so this guards the code, not the user).
    """
    body: dict[str, Any] = {}
    for name, rule in schema.fields.items():
        value = values.get(name)
        value = rule.default if value is None else value
        if value is None:
            continue
        if not rule.accepts(value):
            raise GenerationError(f"{schema.path}: {name} {value!r} must be {rule.allowed()}")
        body[name] = value
    for name in schema.prompt_fields:
        text = values.get(name)
        if text:
            body[name] = fit_prompt(str(text), schema.prompt_limit, name)
    if schema.text_prompts:
        body["text_prompts"] = _text_prompts(schema, values)
    return body


def _text_prompts(schema: ModelSchema, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    prompts = [{"text": fit_prompt(str(values["prompt"]), schema.prompt_limit), "weight": 1}]
    negative = values.get("negative_prompt")
    if negative:
        prompts.append({"text": fit_prompt(str(negative), schema.prompt_limit), "weight": -1})
    return prompts[: schema.text_prompts]


def shorten_at_word(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters at the last space, or inside its first word
    when that word alone is longer than `limit`."""
    cut = text[: limit + 1]
    if " " in cut.strip():
        cut = cut.rstrip().rsplit(" ", 1)[0]
    return cut[:limit].rstrip(" ,;:")


def fit_prompt(text: str, limit: int, what: str = "prompt") -> str:
    """`text`, or its first words within `limit` characters, saying so in the log."""
    if len(text) <= limit:
        return text
    cut = shorten_at_word(text, limit)
    logger.warning(
        "%s shortened to %d of its %d characters (the model's limit)", what, len(cut), len(text)
    )
    return cut
