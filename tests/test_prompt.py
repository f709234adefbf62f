from __future__ import annotations

from tasks.prompt import MAX_PROMPT_CHARS, build_prompt, clean_narration, scene_seed


def test_prompt_is_the_narration_with_the_style_appended() -> None:
    prompt = build_prompt("A lion walks through a misty jungle at dawn.", "watercolor, soft light")
    assert prompt == "A lion walks through a misty jungle at dawn, watercolor, soft light"


def test_fillers_and_spacing_are_cleaned() -> None:
    assert clean_narration("  Um, a   red door, uh, opens slowly. ") == "a red door, opens slowly"


def test_scene_override_wins_over_the_narration() -> None:
    assert build_prompt("whatever was said", "ink", override="a castle on a hill") == (
        "a castle on a hill, ink"
    )


def test_empty_narration_gives_no_prompt_even_with_a_style() -> None:
    assert build_prompt("", "watercolor") == ""
    assert build_prompt("um.", "watercolor") == ""


def test_long_narrations_are_cut_on_a_word_boundary_and_keep_the_style() -> None:
    narration = " ".join(["elephant"] * 300)
    prompt = build_prompt(narration, "charcoal sketch")
    assert len(prompt) <= MAX_PROMPT_CHARS
    assert prompt.endswith(", charcoal sketch")
    assert "elephan," not in prompt


def test_scene_seeds_are_stable_distinct_and_never_zero() -> None:
    seeds = {scene_seed(1234, f"scene_{i}") for i in range(200)}
    assert len(seeds) == 200
    assert 0 not in seeds
    assert scene_seed(1234, "dawn") == scene_seed(1234, "dawn")
    assert scene_seed(1234, "dawn") != scene_seed(1235, "dawn")
    assert scene_seed(1234, "dawn", override=99) == 99
