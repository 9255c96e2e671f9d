"""Where results go: Elasticsearch, notifiers, behind small protocols."""
