"""Operations helpers that run apart from the workers (e.g. the alert bridge)."""
