"""`storyboard studio`: the review studio, a small web application over SOURCE and TARGET.

A layer above `flows/` and below `cli/`: it finds storyboards as the watcher does, edits a
storyboard's source (recordings, `storyboard.yaml`) and never its outputs, keeps review
verdicts beside the outputs (`review.json`), and asks the pipeline to re-render.
"""
