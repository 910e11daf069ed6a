"""Queries, one concept per module.

* :mod:`~shared.query.modes`: retrieval modes, fusions, the sparse scale, their defaults
  and what their scores mean.
* :mod:`~shared.query.options`: :class:`~shared.query.options.QueryArgs` (what a query may
  say) and :class:`~shared.query.options.QueryResolver`, which makes every default
  decision of a query once (mode, fusion, weights, candidate sizes, ColBERT re-rank).
* :mod:`~shared.query.plan`: the pure one-request :func:`~shared.query.plan.plan_query`.
* :mod:`~shared.query.relevance`: scores onto [0, 1] per mode and fusion.
"""
