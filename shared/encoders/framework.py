"""The core encoder behind a framework's embedding class (both adapters' classes use it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidInputError, InvalidTypeError
from ..types import Encoder
from .config import EncoderConfig
from .late import require_late_chunking

__all__ = ["encoder_for_output"]


def encoder_for_output(
    encoder: Any,
    model_name: str,
    backend: Any,
    options: Mapping[str, Any],
    *,
    output: str,
    other: str,
    late_chunking: bool = False,
) -> Any:
    """The core encoder of a framework embedding class that returns ``output`` vectors.

    ``encoder`` None: loaded from ``model_name`` / ``backend`` and the class's encoder
    ``options``. Refused: an object that is no :class:`~shared.types.Encoder`, a model without
    ``output`` vectors (``other`` says what to use instead), and ``late_chunking`` on a model
    that cannot late-chunk.
    """
    if encoder is None:
        # Imported here: loading pulls in the model backends (torch), which importing an
        # embedding class must not.
        from . import load_encoder

        encoder = load_encoder(model_name, backend=backend, config=EncoderConfig(**options))
    if not isinstance(encoder, Encoder):
        raise InvalidTypeError(f"encoder must implement shared.types.Encoder, got {type(encoder).__name__}")
    if output not in encoder.outputs:
        raise InvalidInputError(
            f"model {model_name!r} produces no {output} vectors "
            f"(outputs: {sorted(encoder.outputs)}); use {other} for it"
        )
    if late_chunking:
        require_late_chunking(encoder)
    return encoder
