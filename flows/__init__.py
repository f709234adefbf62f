"""Prefect flows. Import `flows.runtime` first: it settles Prefect's environment."""
