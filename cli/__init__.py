"""The `storyboard` command line."""
