"""What the local backend's text encoder is sent: the scene's prompt with its subjects' trigger
words, fitted into CLIP's 77 tokens by shortening the narration, never the storyboard's style.

SD 1.x/2.x and SDXL read the prompt through CLIP text encoders that keep the first 77 tokens
and drop the rest, and the style comes last: left alone, the style is what a long narration
loses. Pipelines with a longer-reading encoder beside CLIP (SD3's and FLUX's T5) are sent the
prompt whole.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from clients.generation.local.models import ModelLocation
from domain.media import ImageRequest, Subject

CLIP_TOKENS = 77
TOKENIZER_FOLDERS = ("tokenizer", "tokenizer_2", "tokenizer_3")


@dataclass(frozen=True)
class SentPrompt:
    text: str
    note: str = ""
    """Why `text` is not the scene's whole prompt; "" when it is."""


def with_triggers(prompt: str, subjects: tuple[Subject, ...]) -> str:
    """`prompt` led by each subject's trigger word it lacks."""
    missing = [s.trigger for s in subjects if s.trigger and s.trigger.lower() not in prompt.lower()]
    return ", ".join([*missing, prompt]) if missing else prompt


class PromptFitter:
    """The prompt as the pipeline in `location` reads it, from its own tokenizers alone (no
    model is loaded to learn it, so a cached scene costs nothing)."""

    def __init__(self, location: ModelLocation) -> None:
        self.location = location
        self._tokenizers: list[Any] | None = None
        self._loading = threading.Lock()

    def sent(self, request: ImageRequest) -> SentPrompt:
        prompt = with_triggers(request.prompt, request.subjects)
        tokenizers = self._clip_tokenizers()
        if not tokenizers or self._fits(tokenizers, prompt):
            return SentPrompt(prompt)
        style = request.style.strip()
        subject = prompt[: -len(style)].rstrip(" ,") if style and prompt.endswith(style) else prompt
        words = subject.split()
        while words:
            words.pop()
            fitted = ", ".join(part for part in (" ".join(words), style) if part)
            if self._fits(tokenizers, fitted):
                note = f"prompt cut to the text encoder's {CLIP_TOKENS} tokens"
                return SentPrompt(fitted, f"{note}: the narration shortened, the style kept")
        return SentPrompt(prompt)  # the style alone is too long: CLIP keeps its first tokens

    @staticmethod
    def _fits(tokenizers: list[Any], text: str) -> bool:
        return all(len(tokenizer(text).input_ids) <= CLIP_TOKENS for tokenizer in tokenizers)

    def _clip_tokenizers(self) -> list[Any]:
        """The pipeline's tokenizers when every one of them reads at most 77 tokens (CLIP);
        none when one reads more (T5), or when they cannot be read."""
        with self._loading:
            if self._tokenizers is None:
                self._tokenizers = self._load()
            return self._tokenizers

    def _load(self) -> list[Any]:
        try:
            from transformers import AutoTokenizer
        except ImportError:
            return []
        tokenizers = []
        for name in TOKENIZER_FOLDERS:
            folder = self.location.folder / name
            if not folder.is_dir():
                continue
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            except (OSError, ValueError):
                return []
            if tokenizer.model_max_length > CLIP_TOKENS:
                return []
            tokenizers.append(tokenizer)
        return tokenizers
