"""The safety screen: every prompt is checked before its first request; a screened scene is
`blocked`, costs nothing, and is asked about again once its prompt changes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from clients.cache import ContentCache
from clients.safety import Blocklist, SafetyScreen, Screened, profanity_classifier, read_blocklist
from configs.settings import GenerationSettings, SafetySettings, load_storyboard_spec
from domain.errors import ConfigurationError
from domain.scene import Recording, SceneOutcome, SceneStatus, Transcript
from domain.storyboard import StoryboardSpec
from tasks.assembly.timeline import scene_cut
from tasks.prompt import ScenePrompt, image_request
from tasks.safety import CachedScores, safety_screen, screen_scene, screened_texts
from testkit.fakes.nvidia_server import FakeNvidia
from tests.helpers import DEMO_DIR, DEMO_WORDS, PROJECT_ROOT, nvidia_env, read_manifest, run_cli

ORDINARY_NARRATION = (
    "A hawk makes its kill.",
    "Lions hunt a zebra in the jungle.",
    "A bloody battle rages in the storm.",
    "The soldiers kill the enemy at dawn.",
    "Knights fight a fierce battle on the castle walls.",
    "A storm destroys the village and the river floods.",
    "The wolf attacks the deer and the hunter shoots the bear.",
    "Dead bodies lie on the battlefield as the dragon burns the city.",
    "The detective finds the murder weapon. They die in the war.",
    "The class is in session and the sexton rings the church bell.",
)


def _scene(
    text: str, override: str | None = None, english: str | None = None
) -> tuple[Recording, Transcript]:
    recording = Recording("s1", 1, Path("s1.wav"), "file:///s1.wav", "0" * 64, override)
    transcript = Transcript("en", 1.0, text, english or text, (), 3.0, False, 0.1)
    return recording, transcript


class _Scores:
    """A classifier that gives every text the same score and counts its loading."""

    name = "test"

    def __init__(self, score: float) -> None:
        self.score, self.loaded = score, 0

    def load(self) -> _Scores:
        self.loaded += 1
        return self

    def scores(self, texts: Sequence[str]) -> list[float]:
        return [self.score] * len(texts)


@pytest.mark.parametrize(
    ("entry", "text", "found"),
    [
        ("ass", "The class is in session", False),
        ("ass", "what an ASS he is", True),
        ("Silver Drops", "spraying silver   drops.", True),
        ("silver drops", "spraying silver-drops everywhere", True),
        ("silver drops", "silver and drops", False),
        ("kill*", "the hawk is killing", True),
        ("kill", "a killer whale", False),
        ("crème", "a CRÈME cake", True),
    ],
)
def test_the_blocklist_matches_whole_words_and_phrases_in_any_case(
    entry: str, text: str, found: bool
) -> None:
    assert (Blocklist((entry,)).find(text) is not None) is found


def test_the_blocklist_names_the_entry_it_found_and_reads_its_file(tmp_path: Path) -> None:
    listed = tmp_path / "words.txt"
    listed.write_text("# the team's list\n\nquiet river   # a phrase\nxyz\n", encoding="utf-8")
    entries = read_blocklist(listed)
    assert entries == ("quiet river", "xyz")
    assert Blocklist(entries).find("the lion reaches a Quiet River at dusk") == "quiet river"
    assert Blocklist(()).find("anything") is None
    with pytest.raises(ConfigurationError, match="blocklist_file"):
        read_blocklist(tmp_path / "missing.txt")


def test_a_score_at_the_threshold_blocks_and_below_it_passes() -> None:
    texts = [Screened("the prompt", "a quiet scene")]
    at, below = _Scores(0.9), _Scores(0.899)
    assert SafetyScreen(Blocklist(), at.load, 0.9).reason_to_block(texts) == (
        "classifier: test 0.90 ≥ 0.90 in the prompt"
    )
    assert SafetyScreen(Blocklist(), below.load, 0.9).reason_to_block(texts) is None


def test_the_blocklist_answers_without_loading_the_classifier() -> None:
    classifier = _Scores(0.0)
    screen = SafetyScreen(Blocklist(("xyz",)), classifier.load, 0.9)
    assert screen.reason_to_block([Screened("the narration", "XYZ here")]) == (
        "blocklist word 'xyz' in the narration"
    )
    assert screen.reason_to_block([Screened("the prompt", "   ")]) is None
    assert classifier.loaded == 0


def test_a_text_scored_before_is_not_scored_again_and_loads_no_classifier(
    tmp_path: Path,
) -> None:
    scores = CachedScores(ContentCache(tmp_path), name="test")
    first, again = _Scores(0.95), _Scores(0.0)
    texts = [Screened("the prompt", "a lion at dawn"), Screened("the narration", "Go away. Now")]
    reason = SafetyScreen(Blocklist(), first.load, 0.9, scores).reason_to_block(texts)
    assert reason == "classifier: test 0.95 ≥ 0.90 in the prompt" and first.loaded == 1
    assert SafetyScreen(Blocklist(), again.load, 0.9, scores).reason_to_block(texts) == reason
    assert again.loaded == 0, "every text was scored before"
    lowered = SafetyScreen(Blocklist(), again.load, 0.99, scores).reason_to_block(texts)
    assert lowered is None and again.loaded == 0, "the verdict is the run's, not the cache's"
    edited = [Screened("the prompt", "a lion at dusk")]
    assert SafetyScreen(Blocklist(), again.load, 0.9, scores).reason_to_block(edited) is None
    assert again.loaded == 1, "an edited prompt is scored"


def test_the_screen_is_on_for_every_backend_but_draft_and_merges_its_lists(
    tmp_path: Path,
) -> None:
    (tmp_path / "team.txt").write_text("from the file\n", encoding="utf-8")
    spec = StoryboardSpec(blocklist=("from the storyboard",))
    assert safety_screen(SafetySettings(), "draft", spec) is None
    assert safety_screen(SafetySettings(enabled="off"), "nvidia", spec) is None
    assert safety_screen(SafetySettings(enabled="on"), "draft", spec) is not None
    settings = SafetySettings(blocklist=("from settings",), blocklist_file=tmp_path / "team.txt")
    for backend in ("nvidia", "nim", "local"):
        screen = safety_screen(settings, backend, spec)
        assert screen is not None
        assert set(screen.blocklist.entries) == {
            "from settings",
            "from the storyboard",
            "from the file",
        }
    with pytest.raises(ConfigurationError):
        safety_screen(SafetySettings(blocklist_file=tmp_path / "nope.txt"), "nvidia", spec)


def test_a_scene_prompt_replaces_the_narration_in_what_is_screened() -> None:
    screen = SafetyScreen(Blocklist(("elephants",)), None, 0.9)
    recording, transcript = _scene("A family of elephants wades across the water.")
    assert [t.where for t in screened_texts(recording, transcript, "x")] == [
        "the prompt",
        "the narration",
    ]
    spoken, heard = _scene("Une famille d'éléphants", english="A family of elephants")
    assert len(screened_texts(spoken, heard, "x")) == 3  # the English and the spoken text
    blocked = screen_scene(screen, recording, transcript, _prompt(recording, transcript))
    assert blocked is not None and blocked.status is SceneStatus.BLOCKED
    assert blocked.reason == (
        "blocked by the safety screen: blocklist word 'elephants' in the prompt"
    )
    assert blocked.api_calls == 0
    edited, same = _scene(transcript.text, override="grey giants crossing a river")
    assert screen_scene(screen, edited, same, _prompt(edited, same)) is None
    assert screen_scene(None, recording, transcript, _prompt(recording, transcript)) is None


def _prompt(recording: Recording, transcript: Transcript) -> ScenePrompt:
    return image_request(recording, transcript, StoryboardSpec(), GenerationSettings())


def test_a_blocked_scene_is_a_placeholder_card_that_says_why() -> None:
    recording, transcript = _scene("xyz")
    reason = "blocked by the safety screen: blocklist word 'xyz' in the narration"
    cut = scene_cut(SceneOutcome(recording, SceneStatus.BLOCKED, transcript, error=reason))
    assert cut.clip_path is None and cut.placeholder_heading == "Blocked"
    assert cut.placeholder_detail == reason


def test_the_demo_and_ordinary_narration_pass_the_classifier_and_abuse_does_not() -> None:
    spec = load_storyboard_spec(DEMO_DIR / "storyboard.yaml")
    screen = safety_screen(SafetySettings(), "nvidia", spec)
    assert screen is not None and screen.classifier is profanity_classifier
    for scene_id, words in [*DEMO_WORDS.items(), *(("s1", n) for n in ORDINARY_NARRATION)]:
        recording, transcript = _scene(words)
        request = image_request(recording, transcript, spec, GenerationSettings())
        assert screen_scene(screen, recording, transcript, request) is None, scene_id
    recording, transcript = _scene("The river is calm. What the fuck is this shit?")
    blocked = screen_scene(screen, recording, transcript, _prompt(recording, transcript))
    assert blocked is not None
    assert "classifier: profanity 1.00 ≥ 0.90 in the" in blocked.reason


def test_a_draft_run_never_imports_the_classifier() -> None:
    script = (
        "import sys\n"
        "import flows.storyboard, cli.commands\n"
        "from clients.safety import Screened\n"
        "from configs.settings import SafetySettings\n"
        "from domain.storyboard import StoryboardSpec\n"
        "from tasks.safety import safety_screen\n"
        "assert safety_screen(SafetySettings(), 'draft', StoryboardSpec()) is None\n"
        "screen = safety_screen(SafetySettings(), 'nvidia', StoryboardSpec())\n"
        "assert 'sklearn' not in sys.modules, 'imported before any prompt was checked'\n"
        "assert screen.reason_to_block([Screened('the prompt', 'a lion at dawn')]) is None\n"
        "assert 'sklearn' in sys.modules\n"
    )
    result = subprocess.run(  # noqa: S603 - fixed argument list
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_a_blocked_scene_costs_no_request_and_an_edited_prompt_is_asked_again(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    source = tmp_path / "lion"
    shutil.copytree(DEMO_DIR, source)
    spec_file = source / "storyboard.yaml"
    spec_file.write_text(spec_file.read_text() + "blocklist: [Silver]\n")
    (tmp_path / "team-blocklist.txt").write_text("# the team's words\nQuiet  River\n")
    config = tmp_path / "run.yaml"
    config.write_text(
        "generation: {requests_per_minute: 600}\n"
        f"safety: {{blocklist_file: {tmp_path / 'team-blocklist.txt'}}}\n"
    )
    run = ["run", str(source), "--config", str(config)]
    # The fake filters "silver" itself: a screen that let it through would show `filtered`.
    with FakeNvidia(filter_word="silver") as fake:
        env = nvidia_env(cli_env, fake, tmp_path / "cache")
        first = run_cli([*run, "--out", str(tmp_path / "out")], env, tmp_path)
        sent_first = fake.stats.generation_requests
        spec_file.write_text(
            spec_file.read_text().replace(
                "  - id: elephants\n",
                "  - id: elephants\n    prompt: grey giants wade across a shallow river\n",
            )
        )
        again = run_cli(
            [*run, "--out", str(tmp_path / "again"), "--only", "elephants"], env, tmp_path
        )
        sent_again = fake.stats.generation_requests - sent_first

    assert first.returncode == 3, first.stderr
    manifest = read_manifest(tmp_path / "out")
    assert manifest["status"].tolist() == ["ok", "blocked", "blocked", "ok", "ok"]
    assert manifest.loc[1, "error"] == (
        "blocked by the safety screen: blocklist phrase 'Quiet River' in the prompt"
    )
    assert "blocklist word 'Silver' in the prompt" in manifest.loc[2, "error"]
    assert manifest.loc[2, "image_path"] == ""
    report = json.loads((tmp_path / "out" / "run.json").read_text())
    assert report["scenes"] == {"ok": 3, "no_speech": 0, "filtered": 0, "blocked": 2, "failed": 0}
    assert report["api_calls"] == sent_first == 6  # an image and a clip for each ok scene
    page = (tmp_path / "out" / "index.html").read_text()
    assert page.count('<article class="card blocked"') == 2 and "2 blocked" in page
    assert "blocked by the safety screen: blocklist word &#39;Silver&#39;" in page

    assert again.returncode == 3, again.stderr  # the river is still blocked
    statuses = read_manifest(tmp_path / "again")["status"].tolist()
    assert statuses == ["ok", "blocked", "ok", "ok", "ok"]
    assert sent_again == 2
