"""Typed settings and the storyboard file schema."""

from configs.settings import (
    AssemblySettings,
    GenerationSettings,
    SceneSpec,
    Settings,
    StoryboardSpec,
    TranscriptionSettings,
    default_cache_dir,
    load_settings,
    load_storyboard_spec,
)

__all__ = [
    "AssemblySettings",
    "GenerationSettings",
    "SceneSpec",
    "Settings",
    "StoryboardSpec",
    "TranscriptionSettings",
    "default_cache_dir",
    "load_settings",
    "load_storyboard_spec",
]
