"""Whisper on a GPU: seconds per 30-second window, openai-whisper fp16 against fp32, faster-whisper.

    PYTHONPATH=. python benchmarks/whisper_cuda.py --models base small [--tokens 100]
    PYTHONPATH=. python benchmarks/whisper_cuda.py --models base --faster-whisper tokenizer.json
    PYTHONPATH=. python benchmarks/whisper_cuda.py --tiny      # CPU, tiny dims, anywhere

openai-whisper's own CUDA path: `whisper.model.Whisper(dims)` at a real size (the public
checkpoints' `ModelDimensions`) with random weights, which cost what trained ones cost; one
window is the log-mel of 30 s of audio (computed on the device), then `whisper.decode` (the
encoder, then `--tokens` decoder steps: end-of-text is suppressed so every run decodes exactly
that many tokens, about what 30 s of speech holds). Rows: fp32; fp16 as openai-whisper runs it
(weights kept float32 and cast in each layer, `DecodingOptions(fp16=True)`). Greedy and beam 5.

`--faster-whisper TOKENIZER_JSON` then tries faster-whisper's CUDA build (CTranslate2): a random
transformers Whisper of the same size converted with CTranslate2's converter (float16), loaded by
`faster_whisper.WhisperModel` on CUDA and timed the same way (features, encode, generate). Each
step's outcome is printed, failures included, since CTranslate2's wheels need CUDA 12 libraries.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

SAMPLE_RATE = 16_000
WINDOW_S = 30
# The public checkpoints' dimensions: n_mels, state, heads, encoder and decoder layers, vocab.
SIZES: dict[str, tuple[int, int, int, int, int, int]] = {
    "tiny": (80, 384, 6, 4, 4, 51865),
    "base": (80, 512, 8, 6, 6, 51865),
    "small": (80, 768, 12, 12, 12, 51865),
    "medium": (80, 1024, 16, 24, 24, 51865),
    "large-v3": (128, 1280, 20, 32, 32, 51866),
    "turbo": (128, 1280, 20, 32, 4, 51866),
}


def dimensions(name: str) -> Any:
    """`whisper.model.ModelDimensions` of a public checkpoint."""
    from whisper.model import ModelDimensions

    mels, state, heads, enc_layers, dec_layers, vocab = SIZES[name]
    return ModelDimensions(
        n_mels=mels,
        n_audio_ctx=1500,
        n_audio_state=state,
        n_audio_head=heads,
        n_audio_layer=enc_layers,
        n_vocab=vocab,
        n_text_ctx=448,
        n_text_state=state,
        n_text_head=heads,
        n_text_layer=dec_layers,
    )


def thirty_seconds(seed: int = 0) -> np.ndarray:
    """30 s of speech-like audio at 16 kHz: a few harmonics under noise (content costs nothing)."""
    rng = np.random.default_rng(seed)
    t = np.arange(WINDOW_S * SAMPLE_RATE) / SAMPLE_RATE
    voice = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((180, 360, 540), start=1))
    audio = 0.2 * voice * (1 + np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(t.size)
    return audio.astype(np.float32)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_calls(call: Callable[[], Any], device: str, warmup: int, repeats: int) -> list[float]:
    """Wall seconds of `repeats` calls after `warmup` untimed ones, device synchronized."""
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        call()
        _sync(device)
        seconds.append(time.perf_counter() - started)
    return seconds


def openai_rows(name: str, args: argparse.Namespace, device: str) -> list[dict[str, Any]]:
    """openai-whisper, one window: fp32, fp16 (openai's way), fp16 with half weights."""
    import whisper
    from whisper.tokenizer import get_tokenizer

    dims = dimensions(name)
    torch.manual_seed(0)
    model = whisper.model.Whisper(dims).to(device)
    tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages)
    audio = torch.from_numpy(thirty_seconds()).to(device)
    rows = []
    # fp16 only as openai-whisper runs it: its LayerNorm needs float32 weights, so model.half()
    # fails ("expected scalar type Float but found Half", seen on the H100).
    variants = [("fp32", False), ("fp16", True)]
    for label, fp16 in variants if device == "cuda" else variants[:1]:
        for beam in (None, 5):
            options = whisper.DecodingOptions(
                language="en",
                fp16=fp16,
                without_timestamps=True,
                sample_len=args.tokens,
                suppress_tokens=[-1, tokenizer.eot],
                beam_size=beam,
            )

            def window(options: Any = options, model: Any = model) -> Any:
                mel = whisper.log_mel_spectrogram(audio, n_mels=dims.n_mels)
                return whisper.decode(model, whisper.pad_or_trim(mel, 3000), options)

            tokens = len(window().tokens)
            seconds = time_calls(window, device, args.warmup, args.repeats)
            search = "greedy" if beam is None else f"beam {beam}"
            rows.append(_row("openai-whisper", name, f"{label}, {search}", tokens, seconds))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _row(engine: str, name: str, variant: str, tokens: int, seconds: list[float]) -> dict[str, Any]:
    return {
        "engine": engine,
        "model": name,
        "variant": variant,
        "tokens": tokens,
        "s_per_window": statistics.median(seconds),
        "min_s": min(seconds),
        "runs": len(seconds),
    }


def _step(log: list[str], what: str, call: Callable[[], Any]) -> Any:
    """Run one faster-whisper step, recording what happened; re-raise to stop the attempt."""
    try:
        result = call()
    except Exception as error:  # every failure is the finding here
        log.append(f"FAILED {what}: {type(error).__name__}: {error}")
        raise
    log.append(f"ok {what}" + (f": {result}" if isinstance(result, (str, int, set)) else ""))
    return result


def convert_random(name: str, folder: Path, tokenizer_json: Path) -> Path:
    """A random transformers Whisper of this size, converted to CTranslate2 float16."""
    import ctranslate2
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    mels, state, heads, enc_layers, dec_layers, vocab = SIZES[name]
    config = WhisperConfig(
        vocab_size=vocab,
        num_mel_bins=mels,
        d_model=state,
        encoder_layers=enc_layers,
        decoder_layers=dec_layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=4 * state,
        decoder_ffn_dim=4 * state,
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=50258,
        eos_token_id=50257,
        pad_token_id=50257,
        bos_token_id=50257,
    )
    WhisperForConditionalGeneration(config).save_pretrained(folder / "hf")
    (folder / "hf" / "tokenizer.json").write_bytes(tokenizer_json.read_bytes())
    (folder / "hf" / "tokenizer_config.json").write_text('{"tokenizer_class": "WhisperTokenizer"}')
    out = folder / "ct2"
    ctranslate2.converters.TransformersConverter(str(folder / "hf")).convert(
        str(out), quantization="float16", force=True
    )
    (out / "tokenizer.json").write_bytes(tokenizer_json.read_bytes())
    return out


def faster_whisper_rows(
    name: str, args: argparse.Namespace, device: str, log: list[str]
) -> list[dict[str, Any]]:
    """faster-whisper on `device`: each step logged; returns timed rows if it got that far."""
    import ctranslate2

    log.append(f"ctranslate2 {ctranslate2.__version__}")
    if device == "cuda":
        _step(log, "cuda devices", ctranslate2.get_cuda_device_count)
    _step(log, f"{device} compute types", lambda: ctranslate2.get_supported_compute_types(device))
    sys.modules.setdefault("av", types.ModuleType("av"))  # audio decoding only; not used here
    from faster_whisper import WhisperModel

    compute = "float16" if device == "cuda" else "float32"
    with tempfile.TemporaryDirectory() as tmp:
        folder = _step(log, "convert", lambda: convert_random(name, Path(tmp), args.faster_whisper))
        model = _step(
            log,
            f"load on {device} ({compute})",
            lambda: WhisperModel(str(folder), device=device, compute_type=compute),
        )
        audio = thirty_seconds()
        eot = model.hf_tokenizer.token_to_id("<|endoftext|>")
        specials = ("<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>")
        prompt = [model.hf_tokenizer.token_to_id(token) for token in specials]
        rows = []
        for beam in (1, 5):
            limit = [len(prompt) + args.tokens]

            def window(beam: int = beam, limit: list[int] = limit) -> Any:
                encoded = model.encode(model.feature_extractor(audio)[:, :3000])
                return model.model.generate(
                    encoded,
                    [prompt],
                    beam_size=beam,
                    max_length=limit[0],
                    suppress_tokens=[-1, eot],
                    suppress_blank=False,
                )[0]

            tokens = len(_step(log, f"generate, beam {beam}", window).sequences_ids[0])
            for _ in range(3):  # max_length is not a token count: widen it to --tokens
                if tokens >= args.tokens:
                    break
                limit[0] = limit[0] * args.tokens // max(tokens, 1) + 1
                tokens = len(window().sequences_ids[0])
            log.append(f"  beam {beam}: max_length {limit[0]} gives {tokens} tokens")
            seconds = time_calls(window, device, args.warmup, args.repeats)
            search = "greedy" if beam == 1 else f"beam {beam}"
            rows.append(_row("faster-whisper", name, f"{compute}, {search}", tokens, seconds))
        return rows


def print_table(rows: list[dict[str, Any]], device_name: str) -> None:
    """Engine, model, variant, tokens and median seconds per 30-second window."""
    print(f"device: {device_name}")
    print(f"{'engine':<16} {'model':<9} {'variant':<30} {'tokens':>6} {'s/window':>9} {'min s':>7}")
    for r in rows:
        print(
            f"{r['engine']:<16} {r['model']:<9} {r['variant']:<30} {r['tokens']:>6}"
            f" {r['s_per_window']:>9.3f} {r['min_s']:>7.3f}"
        )


def parse_args() -> argparse.Namespace:
    """The command line (see --help)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=tuple(SIZES), default=["base"])
    parser.add_argument("--tokens", type=int, default=100, help="decoded tokens per window")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--faster-whisper",
        type=Path,
        metavar="TOKENIZER_JSON",
        help="also try faster-whisper, with this Whisper tokenizer.json",
    )
    parser.add_argument("--tiny", action="store_true", help="CPU, the tiny model, few tokens")
    parser.add_argument("--json", type=Path, help="write the rows here")
    return parser.parse_args()


def main() -> None:
    """Time every model and engine asked for, then print the table."""
    args = parse_args()
    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    if args.tiny:
        args.models, args.tokens, args.repeats, args.warmup = ["tiny"], 10, 2, 1
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    rows: list[dict[str, Any]] = []
    log: list[str] = []
    for model in args.models:
        rows += openai_rows(model, args, device)
        if args.faster_whisper:
            try:
                rows += faster_whisper_rows(model, args, device, log)
            except Exception as error:  # the failure is the finding
                if not log or not log[-1].startswith("FAILED"):
                    log.append(f"FAILED: {type(error).__name__}: {error}")
    if log:
        print("faster-whisper:\n  " + "\n  ".join(log))
    if args.json:
        args.json.write_text(json.dumps({"device": name, "rows": rows, "log": log}, indent=1))
    print_table(rows, name)


if __name__ == "__main__":
    main()
