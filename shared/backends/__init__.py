"""Storage backends, and the one place that chooses between them (:func:`open_backend`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InvalidInputError
from .base import Backend, BackendOptions, Connection

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..layouts import Layout

_EMBEDDED = Connection()


def open_backend(
    collection_name: str,
    connection: Connection = _EMBEDDED,
    *,
    layout: Layout | None = None,
    shard_key: str | None = None,
    **options: Unpack[BackendOptions],
) -> Backend:
    """The backend of a store's collection at ``connection``: a Qdrant server or qdrant-client
    local mode when it names a ``url``, ``client`` or ``aclient``, else the embedded Qdrant Edge
    shard at its ``path`` (a temporary directory when None). Options of the other kind are
    refused, not ignored; ``options``: :class:`~shared.backends.base.BackendOptions`.

    ``layout``: the layout asked for (another framework's needs a qdrant-client backend).
    ``shard_key``: the custom shard key every request is routed to (a server only).
    Each backend module is imported only when chosen.
    """
    remote = connection.is_remote
    if layout is not None:
        layout.check_backend(embedded=not remote)
    if remote:
        if connection.path is not None:
            raise InvalidInputError("pass either path (embedded store) or url/client (remote), not both")
        from .remote import RemoteBackend

        return RemoteBackend(collection_name, connection, shard_key=shard_key, **options)
    if shard_key is not None:
        raise InvalidInputError(
            "shard_key routes requests on a Qdrant server (url= or client=); the embedded store is one shard"
        )
    if connection.api_key is not None:
        raise InvalidInputError("api_key is only used with url= (a Qdrant server)")
    if connection.retry is not None:
        # In-process calls have no transient failures to retry; silently accepting
        # the option would suggest a protection that does not exist.
        raise InvalidInputError("retry is only used with url= or client= (a Qdrant server)")
    from .edge import EdgeBackend

    # compact_every: None = every 100,000 points for on_disk stores, never otherwise.
    return EdgeBackend(
        collection_name,
        connection.path,
        compact_every=options.get("compact_every"),
        background_index_min=options.get("background_index_min"),
    )


__all__ = ["Backend", "BackendOptions", "Connection", "open_backend"]
