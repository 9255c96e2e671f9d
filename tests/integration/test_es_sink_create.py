"""ElasticsearchSink with ``op_type="create"`` against the real server: the first
version of a document stays, and a later copy is reported written."""

from __future__ import annotations

import uuid

import pytest
from elasticsearch import Elasticsearch

from monitor.local.embedded import EmbeddedServers
from monitor.sinks.base import Document
from monitor.sinks.elasticsearch.bulk import ElasticsearchSink

pytestmark = pytest.mark.integration


async def test_create_keeps_the_first_version_on_the_real_server(
    noida: EmbeddedServers,
) -> None:
    assert noida.addresses is not None
    url = noida.addresses.es_url
    index = f"test-create-{uuid.uuid4().hex[:8]}"
    posts = ElasticsearchSink.connect(url, op_type="create")
    try:
        first = await posts.write([Document(index, "p1", {"text": "first"})])
        again = await posts.write(
            [
                Document(index, "p1", {"text": "second"}),
                Document(index, "p2", {"text": "other"}),
            ]
        )
        replaced = await posts.with_op_type("index").write(
            [Document(index, "p2", {"text": "replaced"})]
        )
    finally:
        await posts.close()
    assert (first.written, first.rejected) == (["p1"], [])
    assert (again.written, again.existing, again.rejected) == (["p1", "p2"], ["p1"], [])
    assert (replaced.written, replaced.existing) == (["p2"], [])
    with Elasticsearch(url) as client:
        assert client.get(index=index, id="p1")["_source"] == {"text": "first"}
        assert client.get(index=index, id="p2")["_source"] == {"text": "replaced"}


async def test_an_index_of_an_older_mapping_takes_the_new_fields(
    noida: EmbeddedServers,
) -> None:
    """Upgrading: today's posts index, made before a field existed, accepts it."""
    from monitor.sinks.elasticsearch.templates import post_index_template

    assert noida.addresses is not None
    url = noida.addresses.es_url
    prefix = f"t{uuid.uuid4().hex[:8]}"
    template = post_index_template(prefix)
    old = dict(template["template"]["mappings"]["properties"])
    del old["sentiment_model"], old["simhash"]  # as an older release made it
    index = f"{prefix}-posts-2026.12.05"
    with Elasticsearch(url) as client:
        client.indices.create(
            index=index, mappings={"dynamic": "strict", "properties": old}
        )
    sink = ElasticsearchSink.connect(url, templates={f"{prefix}-posts": template})
    try:
        result = await sink.write(
            [
                Document(
                    index,
                    "p1",
                    {"post_id": "p1", "sentiment_model": "m@1", "simhash": 42},
                )
            ]
        )
    finally:
        await sink.close()
    assert (result.written, result.rejected) == (["p1"], [])
    with Elasticsearch(url) as client:
        mapping = client.indices.get_mapping(index=index)[index]["mappings"]
        assert mapping["properties"]["sentiment_model"]["type"] == "keyword"
        assert mapping["properties"]["simhash"]["type"] == "long"
