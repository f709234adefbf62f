"""The types every layer shares: scenes, media requests and results, reports, errors.

The bottom layer: it imports nothing of ours.
"""
