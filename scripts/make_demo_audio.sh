#!/usr/bin/env bash
# Regenerates the demo narrations in storyboards/demo/ with espeak-ng (make demo-audio), each
# with its words in <id>.txt beside it (read by the tests and benchmarks/transcribe.py).
set -euo pipefail
out=storyboards/demo
ffmpeg_bin=$(.venv/bin/python -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())")
speak() {  # id voice format text
  local wav; wav=$(mktemp --suffix=.wav)
  espeak-ng -v "$2" -s 150 -w "$wav" "$4"
  case "$3" in
    ogg) "$ffmpeg_bin" -loglevel error -y -i "$wav" -ac 1 -ar 24000 -c:a libopus -b:a 24k "$out/$1.ogg" ;;
    mp3) "$ffmpeg_bin" -loglevel error -y -i "$wav" -ac 1 -ar 22050 -c:a libmp3lame -b:a 32k "$out/$1.mp3" ;;
    m4a) "$ffmpeg_bin" -loglevel error -y -i "$wav" -ac 1 -ar 22050 -c:a aac -b:a 32k "$out/$1.m4a" ;;
  esac
  rm -f "$wav"
  printf '%s\n' "$4" > "$out/$1.txt"
}
rm -f "$out"/*.ogg "$out"/*.mp3 "$out"/*.m4a "$out"/*.txt
speak dawn       en-us  ogg  "A lion walks through a misty jungle at dawn."
speak river      en-gb  mp3  "Sunlight breaks through the trees as the lion reaches a quiet river."
speak elephants  en-us  ogg  "A family of elephants wades across the water, spraying silver drops."
speak storm      en-gb  m4a  "Storm clouds gather over the savanna and the tall grass bends in the wind."
speak night      en-us  ogg  "At night the lion rests on a rock beneath a sky full of stars."
ls -l "$out"
