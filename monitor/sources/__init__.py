"""Feeds that yield posts: file replay, HTTP polling, webhooks."""
