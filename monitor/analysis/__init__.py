"""Pure logic: no Faust, aiohttp or Elasticsearch imports, no I/O."""
