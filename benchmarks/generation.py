"""Generation throughput against the fake NVIDIA API: the batch against the rate-limit bound.

    .venv/bin/python -m benchmarks.generation [--scenes 40] [--latency 1.0] [--rpm 40]

40 scenes (an image and a clip each) through the real client and the generation stage, with
`--concurrency` scenes at a time, against a loopback server that answers in `--latency`
seconds and enforces `--rpm` requests a minute itself (429 beyond it). Prints the wall time
against the rate-limit bound and against sending the same calls one at a time, and the 429s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from clients.cache import ContentCache
from clients.generation.http import ServiceConnection
from clients.generation.nvidia import NvidiaClient, connection_options
from clients.generation.ratelimit import RateLimiter
from configs.settings import GenerationSettings
from domain.media import ImageRequest
from tasks.generate import generate_media
from testkit.fakes.nvidia_server import VALID_KEY, FakeNvidia, Faults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=40)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--rpm", type=float, default=40.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--faults", type=float, default=0.0, help="share of injected faults")
    arguments = parser.parse_args()

    settings = GenerationSettings(requests_per_minute=arguments.rpm)
    faults = Faults(
        latency_s=arguments.latency,
        rate_limit_per_minute=int(arguments.rpm),
        transient_rate=arguments.faults,
        fault_kinds=("429", "500", "502", "503"),  # answered before a job is accepted
    )
    requests = [
        ImageRequest(f"scene {index}: a lion at dawn", "", "sdxl", index + 1, 5.0, "DDIM", 25)
        for index in range(arguments.scenes)
    ]
    with FakeNvidia(faults) as fake, tempfile.TemporaryDirectory() as folder:
        options = replace(connection_options(settings, fake.api_base), nvcf_base=fake.nvcf_base)
        limiter = RateLimiter(settings.requests_per_minute)
        client = NvidiaClient(ServiceConnection("NVIDIA API", options, limiter, VALID_KEY))
        cache = ContentCache(Path(folder))
        started = time.perf_counter()
        with ThreadPoolExecutor(arguments.concurrency) as pool:
            media = list(pool.map(lambda r: generate_media(client, cache, r, settings), requests))
        wall = time.perf_counter() - started
        stats = fake.stats

    calls = sum(item.api_calls for item in media)
    useful_calls = 2 * arguments.scenes
    bound = (useful_calls - 1) * 60.0 / arguments.rpm + 2 * arguments.latency
    one_at_a_time = useful_calls * max(arguments.latency, 60.0 / arguments.rpm)
    print(f"scenes                 {arguments.scenes} (concurrency {arguments.concurrency})")
    print(f"generation calls       {calls} sent ({useful_calls} needed), {stats.polls} polls")
    print(f"wall time              {wall:7.1f} s")
    print(f"rate-limit bound       {bound:7.1f} s  ({useful_calls} calls at {arguments.rpm:g}/min)")
    print(f"  ratio                {wall / bound:7.2f}x")
    print(f"one at a time          {one_at_a_time:7.1f} s  (each call waits for the last)")
    limited, injected = stats.rate_limited, stats.injected_faults
    print(f"429s from the server   {limited} rate-limited, {injected} injected")
    print(f"contract violations    {len(stats.violations)}")


if __name__ == "__main__":
    main()
