"""The asynchronous face of the public API: the source ecsspot/_sync is generated from."""
