"""The daily report (舆情日报): Elasticsearch figures -> one HTML page (-> PDF).

Data flows one way through four modules:

- :mod:`~monitor.ops.report.data` queries Elasticsearch (bounded) into the
  plain dataclasses of :mod:`~monitor.ops.report.model`;
- :mod:`~monitor.ops.report.stats` holds the pure arithmetic (handling-time
  percentiles, influence ranking, hot and emerging words, excerpts);
- :mod:`~monitor.ops.report.render` writes the self-contained HTML, with the
  charts of :mod:`~monitor.ops.report.svg` and the words of
  :mod:`~monitor.ops.report.i18n`;
- :mod:`~monitor.ops.report.pdf` prints it with headless Chromium.

``monitor report`` (:mod:`monitor.cli.report`) wires them together.
"""
