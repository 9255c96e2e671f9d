"""Where results go: Elasticsearch, the Kafka state log, notifiers."""
