# The two commands: `make demo` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test unit integration lint bench clean system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

## Programs the tests run for real (Debian packages): Prometheus and promtool,
## Alertmanager and amtool, headless Chromium (console and report tests) and
## CJK fonts so Chinese renders in screenshots and the PDF report.
DEBS := prometheus prometheus-alertmanager chromium fonts-noto-cjk
system-deps:
	@missing=""; \
	for cmd in prometheus promtool prometheus-alertmanager amtool chromium; do \
	  command -v $$cmd >/dev/null || missing=1; done; \
	[ -d /usr/share/fonts/opentype/noto ] || missing=1; \
	[ -z "$$missing" ] || { \
	  command -v apt-get >/dev/null || { echo "install the Debian packages: $(DEBS)"; exit 1; }; \
	  echo "installing Debian packages: $(DEBS)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBS) >/dev/null; }

## Run the main job on the embedded default: local servers, worker, sample feed.
demo: $(STAMP) system-deps
	$(BIN)/monitor demo

## Lint, unit tests, then integration tests on real local servers.
## Two processes (a file each at a time): the integration tests mostly wait
## on servers, so two share the 2 cores well.
test: $(STAMP) system-deps lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

unit: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

integration: $(STAMP) system-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/integration

lint: $(STAMP)
	$(BIN)/ruff check monitor tests benchmarks
	$(BIN)/mypy monitor

## Benchmarks print JSON (see benchmarks/README.md).
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_scorer.py
	$(BIN)/python benchmarks/bench_score_stage.py
	$(BIN)/python benchmarks/bench_detector.py
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_text_worst.py
	$(BIN)/python benchmarks/bench_alert_latency.py
	$(BIN)/python benchmarks/bench_console_feed.py

clean:
	rm -rf $(VENV) .monitor build *.egg-info
