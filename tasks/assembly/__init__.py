"""Assembly: every scene, in order, with its narration, into one H.264/AAC storyboard video.

One module per concern: `timeline` (what a scene is and where it sits), `captions` (captions
a few words at a time, `assembly.captions_by_word`), `narration` (the one PCM track),
`overlay` (a scene's source frames, its label and captions), `render` (each scene as a
video-only segment, a few at a time) and `mux` (segments joined by stream copy, the narration
and music muxed in as AAC).
"""
