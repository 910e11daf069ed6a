"""Turn pydantic validation errors of our LlamaIndex classes into m3-hybrid errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError

from shared.errors import InvalidInputError, InvalidTypeError


@contextmanager
def validation_errors_as_ours(cls_name: str) -> Iterator[None]:
    """Re-raise a pydantic ``ValidationError`` as InvalidTypeError/InvalidInputError naming the fields."""
    try:
        yield
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or cls_name}: {err['msg']}" for err in exc.errors()
        ]
        message = f"invalid {cls_name} arguments: " + "; ".join(problems)
        # Input values are left out of the message on purpose: one of them may be a secret.
        if all(err["type"].endswith("_type") or err["type"] == "is_instance_of" for err in exc.errors()):
            raise InvalidTypeError(message) from None
        raise InvalidInputError(message) from None
