"""`storyboard`: the command line.

Exit status: 0 every scene rendered; 3 written with placeholders; 2 bad usage or
configuration; 1 nothing could be produced. Errors are one line on stderr; the traceback
only with STORYBOARD_DEBUG=1.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from cli import interrupts
from domain.errors import ConfigurationError, StoryboardError, is_disk_full

EXIT_FAILED = 1
EXIT_USAGE = 2
DEMO_STORYBOARD = Path(__file__).resolve().parents[1] / "storyboards" / "demo"
TASK_RUNNER_HELP = (
    "thread (default), dask (a local Dask cluster) or dask=tcp://host:8786 (an existing one)"
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, as for every usage error
        self.exit(EXIT_USAGE, f"storyboard: error: {message} (see storyboard --help)\n")


def _shared_options(backends: Sequence[str]) -> dict[str, _Parser]:
    """Parent parsers for the options several commands share, each declared once."""
    config = _Parser(add_help=False)
    config.add_argument("--config", type=Path, help="settings YAML merged over the defaults")
    backend = _Parser(add_help=False)
    backend.add_argument("--backend", choices=backends, help="generation backend")
    runner = _Parser(add_help=False)
    runner.add_argument("--task-runner", default="thread", help=TASK_RUNNER_HELP)
    output = _Parser(add_help=False)
    output.add_argument("--out", dest="target", help="output folder (default output/<name>/)")
    watched = _Parser(add_help=False)
    watched.add_argument("source", help="folder or s3://bucket/prefix/ holding storyboard folders")
    watched.add_argument("--out", dest="target", required=True, help="folder or s3:// prefix")
    watched.add_argument("--settle", type=float, help="seconds a folder must be still (default 30)")
    source = _Parser(add_help=False)
    source.add_argument("source", help="folder of recordings, or storyboards/NAME.yaml")
    return {
        "config": config,
        "backend": backend,
        "runner": runner,
        "output": output,
        "watched": watched,
        "source": source,
    }


def build_parser() -> argparse.ArgumentParser:
    from clients.services import GENERATION_BACKENDS

    shared = _shared_options(list(GENERATION_BACKENDS))
    parser = _Parser(prog="storyboard", description="Narrated scenes in, storyboard video out.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run(commands, shared)
    _add_watch_and_serve(commands, shared)
    _add_studio(commands, shared)
    commands.add_parser(
        "demo", help="render the bundled demo storyboard, offline", parents=[shared["output"]]
    )
    _add_transcribe(commands, shared)
    _add_cache(commands, shared)
    return parser


Commands = Any
"""argparse's sub-parser action (a private class of argparse)."""


def _add_run(commands: Commands, shared: dict[str, _Parser]) -> None:
    run = commands.add_parser(
        "run",
        help="render a storyboard folder or storyboard file",
        parents=[shared[name] for name in ("source", "output", "config", "backend", "runner")],
    )
    run.add_argument("--only", nargs="+", metavar="SCENE_ID", help="regenerate just these scenes")
    run.add_argument("--refresh", action="store_true", help="ignore cached generation results")
    approval = run.add_mutually_exclusive_group()
    approval.add_argument(
        "--approve-images",
        dest="approval",
        action="store_const",
        const="ask",
        help="pause after the images until a reviewer approves them (Prefect UI or studio)",
    )
    approval.add_argument(
        "--approve-all",
        dest="approval",
        action="store_const",
        const="all",
        help="approve every image without pausing, even with generation.approve_images",
    )
    # What the studio's own worker passes, so that run.json records which inputs it rendered
    # and a watcher over the same folder does not render them again.
    run.add_argument("--source-fingerprint", help=argparse.SUPPRESS)


def _add_watch_and_serve(commands: Commands, shared: dict[str, _Parser]) -> None:
    watch = commands.add_parser(
        "watch",
        help="render every new or changed storyboard folder",
        parents=[shared[name] for name in ("watched", "config", "backend", "runner")],
    )
    watch.add_argument("--once", action="store_true", help="one pass, then exit")
    watch.add_argument("--interval", type=float, help="seconds between passes (default 60)")
    serve = commands.add_parser(
        "serve",
        help="serve the watcher and on-demand deployments",
        parents=[shared[name] for name in ("watched", "config", "backend")],
    )
    serve.add_argument("--interval", type=float, help="seconds between watcher runs")
    serve.add_argument("--cron", help="cron schedule for the watcher instead of an interval")
    listen = commands.add_parser(
        "listen",
        help="render a storyboard folder when its bucket's notifications say it changed",
        parents=[shared[name] for name in ("config", "backend")],
    )
    listen.add_argument("queue_url", help="the SQS queue the buckets notify")
    listen.add_argument(
        "--source",
        dest="sources",
        action="append",
        required=True,
        help="s3://bucket/prefix/ holding storyboard folders (repeatable)",
    )
    listen.add_argument("--out", dest="target", required=True, help="folder or s3:// prefix")
    listen.add_argument(
        "--settle", type=float, help="seconds a folder's events must be quiet (default 30)"
    )
    listen.add_argument(
        "--sweep-interval", type=float, help="seconds between safety sweeps (default 3600)"
    )


def _add_studio(commands: Commands, shared: dict[str, _Parser]) -> None:
    studio = commands.add_parser(
        "studio",
        help="the review studio: watch, record, re-take and approve scenes",
        parents=[shared[name] for name in ("config", "backend")],
    )
    studio.add_argument("source", help="folder or s3://bucket/prefix/ holding storyboard folders")
    studio.add_argument("--out", dest="target", required=True, help="folder or s3:// prefix")
    studio.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    studio.add_argument("--port", type=int, help="port to listen on (default 8700)")
    studio.add_argument(
        "--allowed-host",
        dest="allowed_hosts",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name the studio answers to besides loopback's (repeatable; required with "
        "--host 0.0.0.0)",
    )


def _add_cache(commands: Commands, shared: dict[str, _Parser]) -> None:
    cache = commands.add_parser("cache", help="look after the local cache")
    actions = cache.add_subparsers(dest="cache_command", required=True, parser_class=_Parser)
    prune = actions.add_parser(
        "prune",
        help="remove the least recently used cache entries (what the cache can make again)",
        parents=[shared["config"]],
    )
    prune.add_argument("--keep-days", type=float, help="remove what was unused this many days")
    prune.add_argument("--max-gb", type=float, help="down to this size (default cache.max_gb)")
    prune.add_argument(
        "--include-generated",
        action="store_true",
        help="also paid images and clips, transcripts and approval verdicts",
    )


def _add_transcribe(commands: Commands, shared: dict[str, _Parser]) -> None:
    from clients.services import TRANSCRIPTION_ENGINES
    from configs.settings import TranscriptionSettings

    transcribe = commands.add_parser(
        "transcribe",
        help="transcription only, one JSON per scene",
        parents=[shared["source"], shared["config"]],
    )
    transcribe.add_argument("--engine", choices=list(TRANSCRIPTION_ENGINES))
    transcribe.add_argument("--model", help="base, tiny.en, or a folder of CTranslate2 weights")
    devices = get_args(TranscriptionSettings.model_fields["device"].annotation)
    transcribe.add_argument("--device", choices=devices)


def _listen(a: argparse.Namespace) -> int:
    from cli.listen import command_listen

    return command_listen(
        queue_url=a.queue_url,
        sources=a.sources,
        target=a.target,
        config=a.config,
        backend_name=a.backend,
        settle=a.settle,
        sweep_interval=a.sweep_interval,
    )


def dispatch(arguments: argparse.Namespace) -> int:
    from cli import commands

    a = arguments
    if a.command == "demo":
        return commands.command_run(
            source=str(DEMO_STORYBOARD),
            target=a.target,
            config=None,
            backend_name="draft",
            only=[],
            refresh=False,
            task_runner="thread",
        )
    if a.command == "run":
        return commands.command_run(
            source=a.source,
            target=a.target,
            config=a.config,
            backend_name=a.backend,
            only=a.only or [],
            refresh=a.refresh,
            task_runner=a.task_runner,
            source_fingerprint=a.source_fingerprint,
            approval=a.approval,
        )
    if a.command == "cache":
        return commands.command_cache_prune(
            config=a.config,
            keep_days=a.keep_days,
            max_gb=a.max_gb,
            include_generated=a.include_generated,
        )
    if a.command == "listen":
        return _listen(a)
    if a.command == "transcribe":
        return commands.command_transcribe(
            source=a.source, engine=a.engine, model=a.model, device=a.device, config=a.config
        )
    watched: dict[str, Any] = {
        "source": a.source,
        "target": a.target,
        "config": a.config,
        "backend_name": a.backend,
    }
    if a.command == "watch":
        return commands.command_watch(
            **watched,
            once=a.once,
            interval=a.interval,
            settle=a.settle,
            task_runner=a.task_runner,
        )
    if a.command == "serve":
        return commands.command_serve(**watched, interval=a.interval, cron=a.cron, settle=a.settle)
    return commands.command_studio(
        **watched, host=a.host, port=a.port, allowed_hosts=tuple(a.allowed_hosts)
    )


def main(argv: Sequence[str] | None = None) -> int:
    from flows.runtime import configure_environment

    configure_environment()  # before Prefect is first imported
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
    except StoryboardError as exc:  # a refused service, storage, or another failure
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
        interrupts.exit_now(stopped)  # not waiting for threads blocked in flight
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except Exception as exc:
        if (signalled := interrupts.received()) is not None:  # the signal, wrapped by a library
            _say(signalled.message)
            return signalled.exit_status
        return _internal_error(exc)


def _say(message: str) -> None:
    print(f"storyboard: {message}", file=sys.stderr, flush=True)


def _internal_error(exc: Exception) -> int:
    if os.environ.get("STORYBOARD_DEBUG"):
        traceback.print_exception(exc)
    reason = str(exc).splitlines()[0] if str(exc) else ""
    _say(f"internal error: {type(exc).__name__}: {reason} (STORYBOARD_DEBUG=1 shows more)")
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
