"""Stage logic as plain components, driven by any host.

A Faust agent in :mod:`monitor.pipelines`, a test or a file-driven backtest
feeds a component records and writes what it returns. Nothing here imports
Faust, aiokafka, aiohttp or Elasticsearch (a unit test checks).
"""
