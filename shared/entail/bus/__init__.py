"""The message bus: a small port (:mod:`.port`), a Redis Streams adapter
(:mod:`.redis_streams`) and the push relay that stands in for Pub/Sub push
subscriptions locally (:mod:`.relay`).

Nothing is imported here so that ``python -m entail.relay`` and the services
only load what they use.
"""
