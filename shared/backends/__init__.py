"""Storage backends, and the one place that chooses between them (:func:`open_backend`)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError
from ..retry import RetryPolicy
from .base import Backend

if TYPE_CHECKING:
    from ..layouts import Layout


def open_backend(
    collection_name: str,
    *,
    path: str | os.PathLike[str] | None = None,
    url: str | None = None,
    api_key: str | None = None,
    client: Any = None,
    aclient: Any = None,
    timeout: float | None = None,
    retry: RetryPolicy | None = None,
    compact_every: int | None = None,
    shard_number: int | None = None,
    replication_factor: int | None = None,
    write_consistency_factor: int | None = None,
    layout: Layout | None = None,
    shard_key: str | None = None,
) -> Backend:
    """The backend of a store's collection: a Qdrant server or qdrant-client local mode when
    ``url``, ``client`` or ``aclient`` is given, else the embedded Qdrant Edge shard at ``path``
    (a temporary directory when None). Options of the other kind are refused, not ignored.

    ``layout``: the layout asked for (another framework's needs a qdrant-client backend).
    ``shard_key``: the custom shard key every request is routed to (a server only).
    Each backend module is imported only when chosen.
    """
    remote = url is not None or client is not None or aclient is not None
    if layout is not None:
        layout.check_backend(embedded=not remote)
    if remote:
        if path is not None:
            raise InvalidInputError("pass either path (embedded store) or url/client (remote), not both")
        if compact_every is not None:
            # A server manages its own segments and memory.
            raise InvalidInputError("compact_every is only used with the embedded store (path=)")
        from .remote import RemoteBackend

        return RemoteBackend(
            collection_name,
            url=url,
            api_key=api_key,
            client=client,
            aclient=aclient,
            timeout=timeout,
            retry=retry,
            shard_number=shard_number,
            replication_factor=replication_factor,
            write_consistency_factor=write_consistency_factor,
            shard_key=shard_key,
        )
    if shard_key is not None:
        raise InvalidInputError(
            "shard_key routes requests on a Qdrant server (url= or client=); the embedded store is one shard"
        )
    if api_key is not None:
        raise InvalidInputError("api_key is only used with url= (a Qdrant server)")
    if retry is not None:
        # In-process calls have no transient failures to retry; silently accepting
        # the option would suggest a protection that does not exist.
        raise InvalidInputError("retry is only used with url= or client= (a Qdrant server)")
    from .edge import EdgeBackend

    # compact_every: None = every 100,000 points for on_disk stores, never otherwise.
    return EdgeBackend(collection_name, path, compact_every=compact_every)


__all__ = ["Backend", "open_backend"]
