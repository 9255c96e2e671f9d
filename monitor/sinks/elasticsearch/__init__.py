"""Elasticsearch: index templates, the bulk sink, posts, windows and tickets."""
