"""`storyboard`: the command line.

Exit status: 0 every scene rendered; 3 written with placeholders; 2 bad usage or
configuration; 1 nothing could be produced. Errors are one line on stderr; the traceback
only with STORYBOARD_DEBUG=1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flows.runtime import configure_environment

configure_environment()

from cli import interrupts  # noqa: E402
from domain.errors import (  # noqa: E402
    ConfigurationError,
    FatalServiceError,
    StorageError,
    StoryboardError,
    is_disk_full,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PLACEHOLDERS = 3
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_STORYBOARD = PROJECT_ROOT / "storyboards" / "demo"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, as for every usage error
        self.exit(EXIT_USAGE, f"storyboard: error: {message} (see storyboard --help)\n")


TASK_RUNNER_HELP = (
    "thread (default), dask (a local Dask cluster) or dask=tcp://host:8786 (an existing one)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="storyboard", description="Narrated scenes in, storyboard video out.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="render a storyboard folder or storyboard file")
    run.add_argument("source", help="folder of recordings, or storyboards/NAME.yaml")
    _add_render_options(run)
    run.add_argument("--config", type=Path, help="settings YAML merged over the defaults")
    run.add_argument("--backend", choices=("nvidia", "nim", "draft"), help="generation backend")
    run.add_argument("--only", nargs="+", metavar="SCENE_ID", help="regenerate just these scenes")
    run.add_argument("--refresh", action="store_true", help="ignore cached generation results")
    run.add_argument("--task-runner", default="thread", help=TASK_RUNNER_HELP)

    watch = commands.add_parser("watch", help="render every new or changed storyboard folder")
    watch.add_argument("source", help="folder or s3://bucket/prefix/ holding storyboard folders")
    watch.add_argument("--out", dest="target", required=True, help="folder or s3:// prefix")
    watch.add_argument("--once", action="store_true", help="one pass, then exit")
    watch.add_argument("--interval", type=float, help="seconds between passes (default 60)")
    watch.add_argument("--settle", type=float, help="seconds a folder must be still (default 30)")
    watch.add_argument("--config", type=Path, help="settings YAML merged over the defaults")
    watch.add_argument("--backend", choices=("nvidia", "nim", "draft"), help="generation backend")
    watch.add_argument("--task-runner", default="thread", help=TASK_RUNNER_HELP)

    serve = commands.add_parser("serve", help="serve the watcher and on-demand deployments")
    serve.add_argument("source", help="folder or s3://bucket/prefix/ holding storyboard folders")
    serve.add_argument("--out", dest="target", required=True, help="folder or s3:// prefix")
    serve.add_argument("--interval", type=float, help="seconds between watcher runs")
    serve.add_argument("--cron", help="cron schedule for the watcher instead of an interval")
    serve.add_argument("--settle", type=float, help="seconds a folder must be still (default 30)")
    serve.add_argument("--config", type=Path, help="settings YAML merged over the defaults")
    serve.add_argument("--backend", choices=("nvidia", "nim", "draft"), help="generation backend")

    demo = commands.add_parser("demo", help="render the bundled demo storyboard, offline")
    _add_render_options(demo)

    transcribe = commands.add_parser("transcribe", help="transcription only, one JSON per scene")
    transcribe.add_argument("source", help="folder of recordings, or storyboards/NAME.yaml")
    transcribe.add_argument("--engine", choices=("faster-whisper", "openai-whisper"))
    transcribe.add_argument("--model", help="base, tiny.en, or a folder of CTranslate2 weights")
    transcribe.add_argument("--device", choices=("auto", "cpu", "cuda"))
    transcribe.add_argument("--config", type=Path, help="settings YAML merged over the defaults")
    return parser


def _add_render_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", dest="target", help="output folder (default output/<name>/)")


def _say(message: str) -> None:
    print(f"storyboard: {message}", file=sys.stderr, flush=True)


def _backend_for_run(requested: str | None, configured: str) -> str:
    from clients.services import check_backend, check_backend_ready, choose_backend

    backend = choose_backend(requested or configured)
    check_backend(backend)
    check_backend_ready(backend)
    if backend == "draft":
        _say("backend: draft (offline DRAFT panels; set NVIDIA_API_KEY for generated images)")
    else:
        _say(f"backend: {backend}")
    return backend


def command_run(
    source: str,
    target: str | None,
    config: Path | None,
    backend_name: str | None,
    only: Sequence[str] | None,
    refresh: bool,
    task_runner: str,
) -> int:
    from clients.storage import open_storage
    from configs.settings import load_settings
    from flows.runners import parse_task_runner
    from tasks.ingest import resolve_source, scene_files

    runner_spec = parse_task_runner(task_runner)
    if target is not None:
        open_storage(target).check_writable()
    resolved = resolve_source(source)
    scene_ids = set(scene_files(resolved).by_id)
    unknown = [scene_id for scene_id in only or () if scene_id not in scene_ids]
    if unknown:
        raise ConfigurationError(f"--only: no scene called {', '.join(unknown)} in {resolved.uri}")
    settings = load_settings(config, resolved.spec.settings)
    backend = _backend_for_run(backend_name, settings.generation.backend)
    target_uri = _location(target or str(Path("output") / resolved.name))

    from flows.runners import build_task_runner, prefect_api_for
    from flows.runtime import quiet_prefect_console
    from flows.storyboard import storyboard

    quiet_prefect_console()
    with prefect_api_for(runner_spec):
        result = storyboard.with_options(task_runner=build_task_runner(runner_spec, settings))(
            source=source,
            target=target_uri,
            settings=settings,
            backend=backend,
            only=list(only or []),
            refresh=refresh,
            task_runner=str(runner_spec),
        )
    report = result.report
    scenes = report.scenes
    total = sum(scenes.values())
    summary = ", ".join(f"{count} {status}" for status, count in scenes.items() if count)
    draft = " (DRAFT panels, not generated images)" if report.draft else ""
    print(
        f"Storyboard '{report.title}': {total} scenes ({summary}), backend {report.backend}"
        f"{draft}, {report.stages.get('total', 0):.1f} s"
    )
    print(f"  video:    {_shown(result.video)}")
    print(f"  manifest: {_shown(result.manifest)}")
    if scenes.get("ok", 0) == total:
        return EXIT_OK
    return EXIT_PLACEHOLDERS


def _location(uri: str) -> str:
    from clients.storage import is_s3

    return uri if is_s3(uri) else str(Path(uri).expanduser().resolve())


def _check_readable(source: str) -> None:
    from clients.storage import is_s3, open_storage

    if not is_s3(source) and not Path(source).is_dir():
        raise ConfigurationError(f"{source}: no such folder")
    open_storage(source).list()


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
    from configs.settings import load_settings
    from flows.runners import parse_task_runner, prefect_api_for

    runner_spec = parse_task_runner(task_runner)
    settings = load_settings(config)
    _check_readable(source)
    backend = _backend_for_run(backend_name, settings.generation.backend)
    source, target = _location(source), _location(target)

    from flows.runtime import quiet_prefect_console
    from flows.watch import watch_pass

    quiet_prefect_console()
    settle_s = settings.watch.settle_s if settle is None else settle
    with prefect_api_for(runner_spec):
        return _watch_loop(
            lambda: watch_pass(
                source=source,
                target=target,
                settings=settings,
                backend=backend,
                settle_s=settle_s,
                task_runner=str(runner_spec),
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
    from configs.settings import load_settings

    settings = load_settings(config)
    _check_readable(source)
    backend = _backend_for_run(backend_name, settings.generation.backend)

    from prefect import serve

    from flows.runtime import quiet_prefect_console
    from flows.storyboard import storyboard
    from flows.watch import watch_pass

    quiet_prefect_console()
    cron = cron or settings.watch.cron
    schedule: dict[str, Any] = (
        {"cron": cron} if cron else {"interval": interval or settings.watch.interval_s}
    )
    shared = {"settings": settings.model_dump(mode="json"), "backend": backend}
    watcher = watch_pass.to_deployment(
        name="drop-folder",
        parameters={
            **shared,
            "source": _location(source),
            "target": _location(target),
            "settle_s": settings.watch.settle_s if settle is None else settle,
        },
        description=f"Renders new or changed storyboard folders under {source}",
        **schedule,
    )
    on_demand = storyboard.to_deployment(
        name="on-demand",
        parameters=shared,
        description="Renders one storyboard: give it source and target",
    )
    # Prefect's runner stops on SIGTERM by exiting from inside its event loop, leaving this
    # coroutine behind; the stop itself is clean.
    warnings.filterwarnings("ignore", "coroutine 'Runner.astop' was never awaited", RuntimeWarning)
    _say("serving deployments storyboard-watch/drop-folder and storyboard/on-demand (Ctrl-C stops)")
    serve(watcher, on_demand)  # type: ignore[arg-type]
    return EXIT_OK


def _shown(location: str) -> str:
    from clients.storage import is_s3

    if is_s3(location):
        return location
    try:
        return str(Path(location).relative_to(Path.cwd()))
    except ValueError:
        return location


def command_transcribe(
    source: str,
    engine: str | None,
    model: str | None,
    device: str | None,
    config: Path | None,
) -> int:
    from clients.services import load_engine
    from configs.settings import load_settings
    from domain.scene import SceneFailure
    from tasks.ingest import plan_storyboard
    from tasks.language import LanguageChoice
    from tasks.prompt import build_prompt
    from tasks.transcribe import transcribe_recordings

    plan = plan_storyboard(source)
    chosen = {"engine": engine, "model": model, "device": device}
    overrides = {"transcription": {key: value for key, value in chosen.items() if value}}
    settings = load_settings(config, plan.spec.settings, overrides)
    whisper = load_engine(settings.transcription, settings.cache_dir / "models")
    language = plan.spec.language or settings.transcription.language
    failures = 0
    named = LanguageChoice(language, forced=True) if language else None
    results = transcribe_recordings(whisper, plan.recordings, settings.transcription, named)
    for recording, transcript in zip(plan.recordings, results, strict=True):
        line: dict[str, Any] = {"scene_id": recording.scene_id}
        if isinstance(transcript, SceneFailure):
            failures += 1
            line.update(error=transcript.reason, no_speech=False)
        else:
            line.update(
                language=transcript.language,
                language_probability=transcript.language_probability,
                transcript=transcript.text,
                prompt=build_prompt(
                    transcript.english_text, plan.spec.style, recording.prompt_override
                )
                if not transcript.no_speech
                else "",
                no_speech=transcript.no_speech,
                audio_duration_s=transcript.audio_duration_s,
                seconds=transcript.seconds,
            )
        print(json.dumps(line, ensure_ascii=False), flush=True)
    return EXIT_PLACEHOLDERS if failures else EXIT_OK


def dispatch(arguments: argparse.Namespace) -> int:
    if arguments.command == "run":
        return command_run(
            arguments.source,
            arguments.target,
            arguments.config,
            arguments.backend,
            arguments.only,
            arguments.refresh,
            arguments.task_runner,
        )
    if arguments.command == "watch":
        return command_watch(
            arguments.source,
            arguments.target,
            arguments.config,
            arguments.backend,
            arguments.once,
            arguments.interval,
            arguments.settle,
            arguments.task_runner,
        )
    if arguments.command == "serve":
        return command_serve(
            arguments.source,
            arguments.target,
            arguments.config,
            arguments.backend,
            arguments.interval,
            arguments.cron,
            arguments.settle,
        )
    if arguments.command == "demo":
        return command_run(
            str(DEMO_STORYBOARD), arguments.target, None, "draft", None, False, "thread"
        )
    return command_transcribe(
        arguments.source, arguments.engine, arguments.model, arguments.device, arguments.config
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    interrupts.install()
    status = _run_command(arguments)
    interrupts.exit_at_once_on_signal(status)
    return status


def _run_command(arguments: argparse.Namespace) -> int:
    try:
        return dispatch(arguments)
    except ConfigurationError as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    except FatalServiceError as exc:
        _say(f"error: {exc}")
        return EXIT_FAILED
    except StorageError as exc:
        _say(f"error: {exc}")
        return EXIT_FAILED
    except StoryboardError as exc:
        _say(f"error: {exc}")
        return EXIT_FAILED
    except OSError as exc:
        if is_disk_full(exc):
            where = f" writing {exc.filename}" if exc.filename else ""
            _say(
                f"error: the disk is full{where}: free some space where the outputs (--out), "
                "the cache (STORYBOARD_CACHE_DIR) and Prefect (PREFECT_HOME) are written"
            )
            return EXIT_FAILED
        return _internal_error(exc)
    except interrupts.Interrupted as stopped:
        _say(stopped.message)
        return stopped.exit_status
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except Exception as exc:
        return _internal_error(exc)


def _internal_error(exc: Exception) -> int:
    if os.environ.get("STORYBOARD_DEBUG"):
        traceback.print_exception(exc)
    reason = str(exc).splitlines()[0] if str(exc) else ""
    _say(f"internal error: {type(exc).__name__}: {reason} (STORYBOARD_DEBUG=1 shows more)")
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
