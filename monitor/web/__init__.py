"""The HTTP API and console served by the worker."""
