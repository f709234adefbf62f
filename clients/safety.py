"""The safety screen's parts: the team's blocklist and an offline classifier.

A prompt is checked before its first paid request. Two small interfaces do the checking:
`Blocklist` (whole words and phrases, any case) and `Classifier` (a score from 0 to 1 that a
text is offensive). The bundled classifier is `alt-profanity-check`, a scikit-learn model that
ships inside its package (nothing is downloaded). It is imported on the first text it scores,
once per process, so a run whose screen is off never imports scikit-learn.

To add another classifier: a class with `name` and `scores(texts)`, and a loader like
`profanity_classifier` that the screen is built with.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from domain.errors import ConfigurationError

_WORD = re.compile(r"\w", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")


class Classifier(Protocol):
    """Scores texts from 0 (harmless) to 1 (offensive)."""

    name: str

    def scores(self, texts: Sequence[str]) -> list[float]: ...


class ProfanityCheck:
    """`alt-profanity-check`: a linear SVM over word n-grams, trained on offensive comments."""

    name = "profanity"

    def __init__(self, predict_prob: Callable[[list[str]], Any]) -> None:
        self._predict_prob = predict_prob

    def scores(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        return [float(score) for score in self._predict_prob(list(texts))]


_loaded: dict[str, Classifier] = {}
_loading = threading.Lock()


def profanity_classifier() -> Classifier:
    """The bundled classifier, loaded on the first call in this process (about 1.5 s)."""
    with _loading:
        if "profanity" not in _loaded:
            try:
                from profanity_check import predict_prob
            except ImportError as exc:  # a broken installation, not a user's mistake
                raise ConfigurationError(
                    f"safety.classifier needs alt-profanity-check, which cannot be imported "
                    f"({exc}); reinstall the project, or set safety.classifier: false"
                ) from None
            _loaded["profanity"] = ProfanityCheck(predict_prob)
        return _loaded["profanity"]


def _entry_pattern(entry: str) -> str:
    """A blocklist entry as a regular expression: its words in order, any spacing or
    punctuation between them; a word ending in `*` matches any ending."""
    words = []
    for word in entry.split():
        if word.endswith("*") and len(word) > 1:
            words.append(re.escape(word[:-1]) + r"\w*")
        else:
            words.append(re.escape(word))
    return r"\W+".join(words)


@dataclass(frozen=True)
class Blocklist:
    """Words and phrases that block a prompt: whole words, any case (`ass` does not block
    `class`), a phrase's words in order with any spacing or punctuation between them."""

    entries: tuple[str, ...] = ()
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cleaned = tuple(dict.fromkeys(" ".join(e.split()) for e in self.entries if e.strip()))
        object.__setattr__(self, "entries", cleaned)
        ordered = sorted(cleaned, key=len, reverse=True)
        alternatives = "|".join(_entry_pattern(entry) for entry in ordered)
        pattern = (
            re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE) if ordered else None
        )
        object.__setattr__(self, "_pattern", pattern)

    def find(self, text: str) -> str | None:
        """The first entry found in `text`, as the list spells it; None when none is."""
        if self._pattern is None:
            return None
        found = self._pattern.search(text)
        if found is None:
            return None
        return next(
            (
                entry
                for entry in self.entries
                if re.fullmatch(_entry_pattern(entry), found.group(0), re.IGNORECASE)
            ),
            found.group(0),
        )


def read_blocklist(path: Path) -> tuple[str, ...]:
    """A blocklist file: one word or phrase a line; blank lines and `#` comments ignored."""
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else exc
        raise ConfigurationError(
            f"safety.blocklist_file {path}: cannot be read ({reason})"
        ) from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return tuple(line for line in lines if line)


def sentences(text: str) -> list[str]:
    """`text` in sentences, so that one offensive sentence is not diluted by a long
    narration around it."""
    return [part.strip() for part in _SENTENCE_END.split(text) if _WORD.search(part)]


@dataclass(frozen=True)
class Screened:
    """One text to check, and what to call it in a reason ("the prompt", "the narration")."""

    where: str
    text: str
    classify: bool = True
    """False for text the classifier cannot read (it knows English only)."""


class ScoreMemory(Protocol):
    """Scores the classifier gave before, by text: a run whose texts were all scored before
    never loads the classifier."""

    @property
    def name(self) -> str:
        """The classifier's, as a reason names it."""
        ...

    def recall(self, text: str) -> float | None: ...

    def remember(self, text: str, score: float) -> None: ...


@dataclass
class SafetyScreen:
    """Checks texts against the blocklist, then the classifier (loaded at its first use, and
    only for a text `memory` has no score of)."""

    blocklist: Blocklist
    classifier: Callable[[], Classifier] | None
    threshold: float
    memory: ScoreMemory | None = None

    def reason_to_block(self, texts: Iterable[Screened]) -> str | None:
        """Why these texts must not be sent ("blocklist word 'x' in the narration",
        "classifier: profanity 0.93 ≥ 0.90 in the prompt"), or None when they may."""
        checked = [item for item in texts if item.text.strip()]
        for item in checked:
            if (entry := self.blocklist.find(item.text)) is not None:
                kind = "phrase" if " " in entry else "word"
                return f"blocklist {kind} '{entry}' in {item.where}"
        if self.classifier is None or not checked:
            return None
        parts = [
            (item.where, part) for item in checked if item.classify for part in sentences(item.text)
        ]
        name, scores = self._scores([part for _, part in parts])
        worst = max(range(len(parts)), key=scores.__getitem__, default=None)
        if worst is None or scores[worst] < self.threshold:
            return None
        return f"classifier: {name} {scores[worst]:.2f} ≥ {self.threshold:.2f} in {parts[worst][0]}"

    def _scores(self, texts: list[str]) -> tuple[str, list[float]]:
        """The classifier's name and its score of each text: remembered, or scored now (and
        remembered)."""
        assert self.classifier is not None
        known = [self.memory.recall(text) if self.memory else None for text in texts]
        unscored = [text for text, score in zip(texts, known, strict=True) if score is None]
        if self.memory is not None and not unscored:
            return self.memory.name, [score for score in known if score is not None]
        classifier = self.classifier()
        fresh = dict(zip(unscored, classifier.scores(unscored), strict=True))
        if self.memory is not None:
            for text, score in fresh.items():
                self.memory.remember(text, score)
        return classifier.name, [
            fresh[t] if s is None else s for t, s in zip(texts, known, strict=True)
        ]
