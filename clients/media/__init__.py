"""Media: audio decoding, the one video encoder, ffmpeg, and drawing text and cards."""
