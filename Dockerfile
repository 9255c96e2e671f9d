# The monitor worker image used by docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MONITOR_DATA_DIR=/data \
    MONITOR_WEB_HOST=0.0.0.0

WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip install . && useradd --system --home /data monitor && mkdir -p /data \
    && chown monitor /data
COPY samples ./samples
COPY examples ./examples

USER monitor
EXPOSE 6066
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/metrics', timeout=2)"
ENTRYPOINT ["monitor"]
CMD ["worker"]
