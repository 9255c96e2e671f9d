"""Where posts come from: file readers, paced replay, the publisher.

A source yields :class:`~monitor.records.Post` objects and knows nothing of
Kafka; :mod:`monitor.sources.publisher` is the one place that produces to the
``posts`` topic.
"""
