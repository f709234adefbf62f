"""Request schemas of NVIDIA's hosted generative API, written from the contract
(`shared/reference/nvidia-genai-api.md`) and NOT from the client's tables: the fake exists to
catch the client's mistakes, so it must not share them.

Every object schema forbids unknown fields (`additionalProperties: false`). Types are strict:
a boolean is never a number, a float is never an integer, a string is never a number. Errors come
out in the 422 shape the API uses, FastAPI/pydantic style:
`{"type", "loc": ["body", ...], "msg", "input", "ctx"}`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

SDXL = "stabilityai/stable-diffusion-xl"
SD3 = "stabilityai/stable-diffusion-3-medium"
FLUX_DEV = "black-forest-labs/flux.1-dev"
FLUX_SCHNELL = "black-forest-labs/flux.1-schnell"
SVD = "stabilityai/stable-video-diffusion"
IMAGE_MODELS = (SDXL, SD3, FLUX_DEV, FLUX_SCHNELL)
MODELS = (*IMAGE_MODELS, SVD)

SAMPLERS = ("DDIM", "K_EULER_ANCESTRAL", "K_LMS", "K_DPM_2_ANCESTRAL")
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "5:4", "4:5", "3:2", "2:3")
MAX_SEED = 2**32 - 1
MAX_PROMPT = 10_000
INLINE_IMAGE_MAX = 200_000
"""Base64 characters an inline SVD image may have (the contract's '< 200KB', read strictly)."""

Loc = tuple[str | int, ...]
Error = dict[str, Any]
Check = Callable[[Any, Loc], list[Error]]


def error(kind: str, loc: Loc, msg: str, value: Any, **ctx: Any) -> Error:
    return {"type": kind, "loc": ["body", *loc], "msg": msg, "input": value, "ctx": ctx}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(ge: int, le: int, multiple_of: int | None = None) -> Check:
    def check(value: Any, loc: Loc) -> list[Error]:
        if not _is_int(value):
            return [error("int_type", loc, "Input should be a valid integer", value)]
        if value < ge:
            return [error("greater_than_equal", loc, f"Input should be >= {ge}", value, ge=ge)]
        if value > le:
            return [error("less_than_equal", loc, f"Input should be <= {le}", value, le=le)]
        if multiple_of and value % multiple_of:
            msg = f"Input should be a multiple of {multiple_of}"
            return [error("multiple_of", loc, msg, value, multiple_of=multiple_of)]
        return []

    return check


def number(le: float, gt: float | None = None, ge: float | None = None) -> Check:
    def check(value: Any, loc: Loc) -> list[Error]:
        if not _is_number(value):
            return [error("float_type", loc, "Input should be a valid number", value)]
        if gt is not None and not value > gt:
            return [error("greater_than", loc, f"Input should be > {gt}", value, gt=gt)]
        if ge is not None and not value >= ge:
            return [error("greater_than_equal", loc, f"Input should be >= {ge}", value, ge=ge)]
        if value > le:
            return [error("less_than_equal", loc, f"Input should be <= {le}", value, le=le)]
        return []

    return check


def literal(*choices: Any) -> Check:
    """One of `choices`, compared with its type: 0 matches 0 and 0.0 but never False."""

    def same(value: Any, choice: Any) -> bool:
        if _is_number(choice):
            return _is_number(value) and value == choice
        return type(value) is type(choice) and value == choice

    expected = ", ".join(repr(choice) for choice in choices)

    def check(value: Any, loc: Loc) -> list[Error]:
        if any(same(value, choice) for choice in choices):
            return []
        msg = f"Input should be {expected}"
        return [error("literal_error", loc, msg, value, expected=expected)]

    return check


def string(min_length: int, max_length: int) -> Check:
    def check(value: Any, loc: Loc) -> list[Error]:
        if not isinstance(value, str):
            return [error("string_type", loc, "Input should be a valid string", value)]
        if len(value) < min_length:
            msg = f"String should have at least {min_length} characters"
            return [error("string_too_short", loc, msg, value, min_length=min_length)]
        if len(value) > max_length:
            msg = f"String should have at most {max_length} characters"
            return [error("string_too_long", loc, msg, value, max_length=max_length)]
        return []

    return check


def array(item: Check, min_items: int, max_items: int) -> Check:
    def check(value: Any, loc: Loc) -> list[Error]:
        if not isinstance(value, list):
            return [error("list_type", loc, "Input should be a valid list", value)]
        if not min_items <= len(value) <= max_items:
            kind = "too_short" if len(value) < min_items else "too_long"
            msg = f"List should have {min_items}..{max_items} items, not {len(value)}"
            ctx = {"min_length": min_items, "max_length": max_items, "actual_length": len(value)}
            return [error(kind, loc, msg, value, **ctx)]
        return [
            problem for index, entry in enumerate(value) for problem in item(entry, (*loc, index))
        ]

    return check


@dataclass(frozen=True)
class Obj:
    """A JSON object with exactly these fields (`additionalProperties: false`)."""

    fields: Mapping[str, Check]
    required: Collection[str] = field(default_factory=tuple)

    def __call__(self, value: Any, loc: Loc = ()) -> list[Error]:
        if not isinstance(value, dict):
            return [error("dict_type", loc, "Input should be a valid dictionary", value)]
        problems = [
            error("missing", (*loc, name), "Field required", value)
            for name in self.required
            if name not in value
        ]
        for name, entry in value.items():
            check = self.fields.get(name)
            if check is None:
                msg = "Extra inputs are not permitted"
                problems.append(error("extra_forbidden", (*loc, name), msg, entry))
            else:
                problems += check(entry, (*loc, name))
        return problems


SEED = integer(0, MAX_SEED)
CFG_SCALE = number(gt=1, le=9)
PROMPT = string(1, MAX_PROMPT)
FLUX_SIDE = integer(768, 1344, multiple_of=64)

SDXL_SCHEMA = Obj(
    {
        "text_prompts": array(
            Obj({"text": PROMPT, "weight": literal(1, -1)}, ("text", "weight")), 1, 2
        ),
        "cfg_scale": CFG_SCALE,
        "sampler": literal(*SAMPLERS),
        "seed": SEED,
        "steps": integer(5, 100),
        "width": integer(1024, 1024),
        "height": integer(1024, 1024),
        "samples": integer(1, 1),
    },
    ("text_prompts",),
)
SD3_SCHEMA = Obj(
    {
        "prompt": PROMPT,
        "negative_prompt": string(0, MAX_PROMPT),
        "aspect_ratio": literal(*ASPECT_RATIOS),
        "cfg_scale": CFG_SCALE,
        "steps": integer(5, 100),
        "seed": SEED,
        "mode": literal("text-to-image"),
        "output_format": literal("jpeg"),
    },
    ("prompt",),
)


def _flux(steps: Check, cfg_scale: Check) -> Obj:
    fields = {"prompt": PROMPT, "width": FLUX_SIDE, "height": FLUX_SIDE, "cfg_scale": cfg_scale}
    fields |= {"steps": steps, "seed": SEED, "mode": literal("base"), "samples": integer(1, 1)}
    return Obj(fields, ("prompt",))


FLUX_DEV_SCHEMA = _flux(integer(5, 100), CFG_SCALE)
FLUX_SCHNELL_SCHEMA = _flux(integer(1, 4), literal(0))

NIM_SCHEMA = Obj(
    {
        "prompt": PROMPT,
        "mode": literal("base"),
        "seed": SEED,
        "steps": integer(1, 100),
        "width": FLUX_SIDE,
        "height": FLUX_SIDE,
        "cfg_scale": number(ge=0, le=9),
        "samples": integer(1, 1),
    },
    ("prompt",),
)
"""A self-hosted FLUX NIM: looser (dev's or schnell's steps and cfg), still no unknown field."""

_INLINE = re.compile(r"data:image/(png|jpeg);base64,(.*)", re.DOTALL)
_ASSET = re.compile(r"data:image/(png|jpeg);asset_id,([A-Za-z0-9-]+)")


@dataclass(frozen=True)
class Assets:
    """What an SVD request's `image` may refer to: uploaded asset ids, and the ids the request
    named in its NVCF-INPUT-ASSET-REFERENCES header."""

    uploaded: Collection[str] = ()
    referenced: Collection[str] = ()


def svd_image(assets: Assets) -> Check:
    def check(value: Any, loc: Loc) -> list[Error]:
        if not isinstance(value, str):
            return [error("string_type", loc, "Input should be a valid string", value)]
        if inline := _INLINE.fullmatch(value):
            return _inline_problems(inline.group(2), value, loc)
        if asset := _ASSET.fullmatch(value):
            return _asset_problems(asset.group(2), assets, value, loc)
        msg = "Value error, image must be data:image/png|jpeg;base64,... or ;asset_id,..."
        return [error("value_error", loc, msg, value[:100])]

    return check


def _inline_problems(payload: str, value: str, loc: Loc) -> list[Error]:
    if len(payload) > INLINE_IMAGE_MAX:
        msg = f"Value error, an inline image is at most {INLINE_IMAGE_MAX} base64 characters"
        return [error("value_error", loc, msg, value[:100], max_length=INLINE_IMAGE_MAX)]
    try:
        decoded = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded:
        return [error("value_error", loc, "Value error, image is not valid base64", value[:100])]
    return []


def _asset_problems(asset_id: str, assets: Assets, value: str, loc: Loc) -> list[Error]:
    if asset_id not in assets.uploaded:
        msg = f"Value error, asset {asset_id} was not uploaded (or was deleted)"
        return [error("value_error", loc, msg, value)]
    if asset_id not in assets.referenced:
        msg = f"Value error, asset {asset_id} is not named in NVCF-INPUT-ASSET-REFERENCES"
        return [error("value_error", loc, msg, value)]
    return []


def svd_schema(assets: Assets) -> Obj:
    fields = {"image": svd_image(assets), "seed": SEED, "cfg_scale": CFG_SCALE}
    return Obj(fields | {"motion_bucket_id": integer(127, 127)}, ("image",))


ASSET_SCHEMA = Obj(
    {"contentType": literal("image/png", "image/jpeg"), "description": string(1, 1000)},
    ("contentType", "description"),
)

SCHEMAS: dict[str, Obj] = {
    SDXL: SDXL_SCHEMA,
    SD3: SD3_SCHEMA,
    FLUX_DEV: FLUX_DEV_SCHEMA,
    FLUX_SCHNELL: FLUX_SCHNELL_SCHEMA,
}


def validate(model: str, body: Any, assets: Assets | None = None) -> list[Error]:
    """The 422 errors for `body` sent to `model` (a path in MODELS); [] when it is valid."""
    schema = svd_schema(assets or Assets()) if model == SVD else SCHEMAS[model]
    return schema(body)
