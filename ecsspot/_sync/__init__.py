"""The synchronous face of the public API, generated from ecsspot/_async by scripts/unasync.py."""
