# The monitor image used by docker-compose.yml: the workers, the alert bridge,
# the one-shot setup (Kibana import) and the replay demo.
# Pinned like every image of docker-compose.yml: a patch release and a Debian release.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MONITOR_DATA_DIR=/data \
    MONITOR_WEB_HOST=0.0.0.0

WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
# Installed in place (editable), so that the files commands find beside the
# package (samples/, examples/, dashboards/, as in a checkout) are the ones
# copied below, and the package's own data files are read from /app/monitor.
RUN pip install -e . && useradd --system --home /data monitor && mkdir -p /data \
    && chown monitor /data
COPY samples ./samples
COPY examples ./examples
COPY dashboards ./dashboards

USER monitor
# 6066: a worker's web server (/metrics, /api, /console); 9095: the alert bridge.
EXPOSE 6066 9095
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/api/health', timeout=4)"
ENTRYPOINT ["monitor"]
CMD ["worker"]
