"""What each `storyboard` command does, once its arguments are parsed.

Every command checks what it can before Prefect starts (the same preflight the flow runs), so
that a usage mistake costs a second, not a server start.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clients.services import check_backend, check_backend_ready, choose_backend
from clients.storage import CacheLocation, is_s3, open_storage
from configs.settings import Settings, load_settings
from domain.errors import ConfigurationError
from domain.layout import MODELS
from domain.scene import Recording, SceneFailure, Transcript

if TYPE_CHECKING:
    from tasks.opening import OpenedStoryboard

EXIT_OK = 0
EXIT_PLACEHOLDERS = 3
DRAFT_NOTICE = "backend: draft (offline DRAFT panels; set NVIDIA_API_KEY for generated images)"


def say(message: str) -> None:
    print(f"storyboard: {message}", file=sys.stderr, flush=True)


def location(uri: str) -> str:
    return uri if is_s3(uri) else str(Path(uri).expanduser().resolve())


def shown(uri: str) -> str:
    if is_s3(uri):
        return uri
    try:
        return str(Path(uri).relative_to(Path.cwd()))
    except ValueError:
        return uri


def announce_backend(backend: str) -> None:
    check_backend_ready(backend)
    say(DRAFT_NOTICE if backend == "draft" else f"backend: {backend}")


def command_run(
    source: str,
    target: str | None,
    config: Path | None,
    backend_name: str | None,
    only: Sequence[str],
    refresh: bool,
    task_runner: str,
    source_fingerprint: str | None = None,
    approval: str | None = None,
) -> int:
    """`approval`: "ask" pauses for a reviewer's approval of the images, "all" approves them
    all without pausing; None does what `generation.approve_images` says."""
    from flows.runners import launch_temporary_api, parse_task_runner, prefect_api_for

    runner = parse_task_runner(task_runner)
    server = launch_temporary_api()  # starts while the rest of the command loads
    from flows.runners import build_task_runner
    from flows.runtime import quiet_prefect_console
    from flows.storyboard import storyboard
    from tasks.opening import open_storyboard
    from tasks.warm_up import warm_up

    if target is not None:
        _check_target(source, target)  # before an S3 source is downloaded
    opened = open_storyboard(source, load_settings(config))
    opened = opened.under(with_approval(opened.settings, approval))
    settings = opened.settings
    backend, target_uri = _checked_run(opened, target, backend_name, only)
    announce_backend(backend)
    warming = warm_up(opened, backend)  # while the Prefect server starts
    quiet_prefect_console()
    try:
        with prefect_api_for(runner, server):
            result = storyboard.with_options(task_runner=build_task_runner(runner, settings))(
                source=source,
                target=target_uri,
                settings=settings,
                backend=backend,
                only=list(only),
                refresh=refresh,
                source_fingerprint=source_fingerprint,
                approve_all=approval == "all",
                opened=opened,
                cache_bytes_before=warming.cache_bytes_before,
            )
    finally:
        warming.stop()  # what no flow took over: a run that ended before its scenes
    report = result.report
    total = sum(report.scenes.values())
    summary = ", ".join(f"{count} {status}" for status, count in report.scenes.items() if count)
    draft = " (DRAFT panels, not generated images)" if report.draft else ""
    print(
        f"Storyboard '{report.title}': {total} scenes ({summary}), backend {report.backend}"
        f"{draft}, {report.stages.get('total', 0):.1f} s"
    )
    print(f"  video:    {shown(result.video)}")
    print(f"  manifest: {shown(result.manifest)}")
    return EXIT_OK if report.scenes.get("ok", 0) == total else EXIT_PLACEHOLDERS


def _check_target(source: str, target: str) -> None:
    from tasks.preflight import check_apart, check_target

    check_apart(source, target)
    check_target(target)


def _checked_run(
    opened: OpenedStoryboard, target: str | None, backend_name: str | None, only: Sequence[str]
) -> tuple[str, str]:
    """The preflight of a run of `opened` into `target` (the default folder when None): the
    backend it renders with and the target's URI."""
    from tasks.preflight import check_apart, check_run, check_target

    settings = opened.settings
    backend = check_run(opened.folder, backend_name or settings.generation.backend, only, settings)
    target_uri = location(target or str(Path("output") / opened.folder.name))
    check_apart(opened.folder.uri, target_uri)
    if target is None:
        check_target(target_uri)  # the default folder is made only for a run that can start
    return backend, target_uri


def with_approval(settings: Settings, approval: str | None) -> Settings:
    """`settings` with `generation.approve_images` on when the command line asks for an
    approval ("ask") or gives it ("all": every image approved, and remembered as such)."""
    if approval is None:
        return settings
    generation = settings.generation.model_copy(update={"approve_images": True})
    return settings.model_copy(update={"generation": generation})


def check_watched_source(source: str, target: str) -> None:
    """`source` can be listed and lies apart from `target`; ConfigurationError otherwise."""
    from tasks.preflight import check_apart

    check_apart(source, target, watching=True)
    if not is_s3(source) and not Path(source).is_dir():
        raise ConfigurationError(f"{source}: no such folder")
    open_storage(source).list()


def watched_settings(
    source: str, target: str, config: Path | None, backend_name: str | None
) -> tuple[Settings, str]:
    """The settings and backend of a watcher over `source`, once `source` can be listed, lies
    apart from `target`, and the backend can be used."""
    check_watched_source(source, target)
    settings = load_settings(config)
    backend = choose_backend(backend_name or settings.generation.backend)
    check_backend(backend, settings.generation)
    announce_backend(backend)
    return settings, backend


def command_watch(
    source: str,
    target: str,
    config: Path | None,
    backend_name: str | None,
    once: bool,
    interval: float | None,
    settle: float | None,
    task_runner: str,
) -> int:
    from flows.runners import parse_task_runner, prefect_api_for
    from flows.runtime import quiet_prefect_console
    from flows.watch import watch_pass

    runner = parse_task_runner(task_runner)
    settings, backend = watched_settings(source, target, config, backend_name)
    source, target = location(source), location(target)
    quiet_prefect_console()
    settle_s = settings.watch.settle_s if settle is None else settle
    with prefect_api_for(runner):
        return _watch_loop(
            lambda: watch_pass(
                source=source,
                target=target,
                settings=settings,
                backend=backend,
                settle_s=settle_s,
                task_runner=str(runner),
            ),
            once,
            settings.watch.interval_s if interval is None else interval,
        )


def _watch_loop(one_pass: Callable[[], Any], once: bool, interval_s: float) -> int:
    while True:
        report = one_pass()
        print(
            f"watch: {len(report.rendered)} rendered, {len(report.unchanged)} unchanged, "
            f"{len(report.settling)} settling, {len(report.claimed_elsewhere)} taken by another "
            f"watcher, {len(report.failed)} failed",
            flush=True,
        )
        for path in report.rendered:
            print(f"  rendered: {path}", flush=True)
        if once:
            return EXIT_PLACEHOLDERS if report.failed or report.with_placeholders else EXIT_OK
        time.sleep(interval_s)


def command_serve(
    source: str,
    target: str,
    config: Path | None,
    backend_name: str | None,
    interval: float | None,
    cron: str | None,
    settle: float | None,
) -> int:
    from prefect import serve

    from flows.deployments import runner_deployments, schedule_of
    from flows.runtime import quiet_prefect_console

    settings, backend = watched_settings(source, target, config, backend_name)
    quiet_prefect_console()
    deployments = runner_deployments(
        settings=settings,
        backend=backend,
        source=location(source),
        target=location(target),
        settle_s=settings.watch.settle_s if settle is None else settle,
        schedule=schedule_of(settings, interval, cron),
    )
    # Prefect's runner stops on SIGTERM by exiting from inside its event loop, leaving this
    # coroutine behind; the stop itself is clean.
    warnings.filterwarnings("ignore", "coroutine 'Runner.astop' was never awaited", RuntimeWarning)
    say("serving deployments storyboard-watch/drop-folder and storyboard/on-demand (Ctrl-C stops)")
    serve(*deployments)
    return EXIT_OK


def command_studio(
    source: str,
    target: str,
    config: Path | None,
    backend_name: str | None,
    host: str | None,
    port: int | None,
    allowed_hosts: tuple[str, ...] = (),
) -> int:
    """The review studio over SOURCE and TARGET, until Ctrl-C."""
    from studio.config import studio_config
    from tasks.preflight import check_apart

    check_apart(source, target, watching=True)
    settings = load_settings(config)
    studio = studio_config(
        source=location(source),
        target=location(target),
        settings=settings,
        host=host,
        port=port,
        config_file=config.resolve() if config else None,
        backend=backend_name,
        allowed_hosts=allowed_hosts,
    )
    if not is_s3(source) and not Path(source).is_dir():
        raise ConfigurationError(f"{source}: no such folder")
    open_storage(source).list()
    if backend_name:
        check_backend(choose_backend(backend_name), settings.generation)
    from studio.app import listening_socket, serve

    listening = listening_socket(studio)
    shown_host = f"[{studio.host}]" if ":" in studio.host else studio.host
    say(f"studio: http://{shown_host}:{studio.port}/ over {shown(source)} -> {shown(target)}")
    serve(studio, listening)
    return EXIT_OK


def command_transcribe(
    source: str,
    engine: str | None,
    model: str | None,
    device: str | None,
    config: Path | None,
) -> int:
    """The transcripts a run would use, through the same cache: an unchanged storyboard is
    read from it, and what is transcribed here is not transcribed again by `run`."""
    from tasks.language import cached_storyboard_language
    from tasks.opening import open_storyboard
    from tasks.transcribe import cached_transcripts

    chosen = {"engine": engine, "model": model, "device": device}
    overrides = {"transcription": {key: value for key, value in chosen.items() if value}}
    opened = open_storyboard(source, load_settings(config, overrides))
    plan, settings = opened.plan, opened.settings
    cache = CacheLocation.of(settings)
    recordings = list(plan.recordings)
    named = opened.named_language
    language, _ = cached_storyboard_language(recordings, settings.transcription, cache, named)
    models = cache.local / MODELS
    results = cached_transcripts(cache.open(), recordings, settings.transcription, models, language)
    for recording, transcript in zip(recordings, results, strict=True):
        line = _transcript_line(recording.scene_id, transcript, plan.spec.style, recording)
        print(json.dumps(line, ensure_ascii=False), flush=True)
    failures = sum(isinstance(result, SceneFailure) for result in results)
    return EXIT_PLACEHOLDERS if failures else EXIT_OK


def _transcript_line(
    scene_id: str, transcript: Transcript | SceneFailure, style: str, recording: Recording
) -> dict[str, Any]:
    from tasks.prompt import build_prompt

    if isinstance(transcript, SceneFailure):
        return {"scene_id": scene_id, "error": transcript.reason, "no_speech": False}
    prompt = ""
    if not transcript.no_speech:
        prompt = build_prompt(transcript.english_text, style, recording.prompt_override)
    return {
        "scene_id": scene_id,
        "language": transcript.language,
        "language_probability": transcript.language_probability,
        "transcript": transcript.text,
        "prompt": prompt,
        "no_speech": transcript.no_speech,
        "audio_duration_s": transcript.audio_duration_s,
        "seconds": transcript.seconds,
    }


def command_cache_prune(
    config: Path | None, keep_days: float | None, max_gb: float | None, include_generated: bool
) -> int:
    """`storyboard cache prune`: least recently used first, never what a render holds."""
    from clients.cache_pruning import GIGABYTE, prune

    settings = load_settings(config)
    cap = max_gb if max_gb is not None else settings.cache.max_gb
    if (cap is not None and cap < 0) or (keep_days is not None and keep_days < 0):
        raise ConfigurationError("--max-gb and --keep-days must not be negative")
    report = prune(
        settings.cache_dir,
        max_bytes=round(cap * GIGABYTE) if cap is not None else None,
        keep_days=keep_days,
        include_generated=include_generated,
    )
    print(f"cache {settings.cache_dir}: {report.summary()}")
    return 0
