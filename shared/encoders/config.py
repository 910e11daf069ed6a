"""``EncoderConfig``: every encoder option, its default and its check, declared once.

Every model class (:class:`~shared.encoders.base.ModelEncoder` subclasses),
:func:`~shared.encoders.load_encoder` and the framework adapters' embedding classes
take these options; their defaults and descriptions come from here
(:func:`encoder_option_default`, :func:`encoder_option_doc`).  A class that does not use
an option refuses a value for it rather than ignoring it.  :class:`EncoderOptions` is
the same list as a ``TypedDict`` so that ``**options`` stays typed for IDEs and type
checkers; a test checks the two agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from ..errors import InvalidInputError, InvalidTypeError
from ..options import check_options

__all__ = [
    "ENCODER_OPTIONS",
    "PRECISIONS",
    "EncoderConfig",
    "EncoderOptions",
    "check_batch_size",
    "encoder_option_default",
    "encoder_option_doc",
    "options_from",
]

#: Weight precisions: int8 is ONNX Runtime's dynamic quantization (opt-in).
PRECISIONS = ("fp32", "int8")


def _opt(doc: str, *, shared_key: bool = False) -> dict[str, Any]:
    # shared_key: the option changes the vectors, so load_encoder shares an instance only
    # between callers that agree on it.
    return {"doc": doc, "key": shared_key}


def check_batch_size(value: Any, name: str = "batch_size") -> int:
    """``value`` as a positive int (the check of the option and of ``encode(batch_size=)``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be a positive int, got {value!r}")
    return value


def _positive_or_none(value: Any, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidInputError(f"{name} must be a positive int or None, got {value!r}")


def _str_or_none(value: Any, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidTypeError(f"{name} must be a str or None, not {type(value).__name__}")


@dataclass(frozen=True)
class EncoderConfig:
    """How an encoder runs (see the module docstring); checked when built."""

    device: Any = field(
        default=None,
        metadata=_opt("torch device, or 'cuda' for onnxruntime (None: cuda, mps or cpu)", shared_key=True),
    )
    fp16: bool | None = field(
        default=None, metadata=_opt("half precision (None: on GPU only)", shared_key=True)
    )
    precision: str = field(
        default="fp32",
        metadata=_opt('"fp32", or "int8" with backend="onnx" (opt-in)', shared_key=True),
    )
    max_length: int | None = field(
        default=None, metadata=_opt("token limit per text (None: the model's)", shared_key=True)
    )
    truncate_dim: int | None = field(
        default=None, metadata=_opt("MRL truncation size (None: full size)", shared_key=True)
    )
    query_instruction: str | None = field(
        default=None, metadata=_opt("query prompt (None: registry default)", shared_key=True)
    )
    document_instruction: str | None = field(
        default=None, metadata=_opt("document prompt (None: registry default)", shared_key=True)
    )
    batch_size: int = field(default=32, metadata=_opt("texts per forward pass"))
    show_progress: bool = field(default=True, metadata=_opt("show a progress bar while encoding"))
    cache_size: int = field(default=1024, metadata=_opt("entries of the encoder's result cache"))
    max_batch_tokens: int | None = field(
        default=None, metadata=_opt("padded tokens per batch at most (None: no token bound)")
    )
    threads: int | None = field(default=None, metadata=_opt("encoder threads (None: physical cores)"))

    def __post_init__(self) -> None:
        # Types and ranges that do not depend on the model; max_length's upper bound and
        # truncate_dim's range are the model's and are checked when it loads.
        if self.fp16 is not None and not isinstance(self.fp16, bool):
            raise InvalidTypeError(f"fp16 must be a bool or None, not {type(self.fp16).__name__}")
        if self.precision not in PRECISIONS:
            raise InvalidInputError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.max_length is not None and (
            isinstance(self.max_length, bool) or not isinstance(self.max_length, int)
        ):
            raise InvalidTypeError(f"max_length must be an int, not {type(self.max_length).__name__}")
        _str_or_none(self.query_instruction, "query_instruction")
        _str_or_none(self.document_instruction, "document_instruction")
        check_batch_size(self.batch_size)
        if isinstance(self.cache_size, bool) or not isinstance(self.cache_size, int) or self.cache_size < 0:
            raise InvalidInputError(f"cache_size must be an int >= 0, got {self.cache_size!r}")
        _positive_or_none(self.max_batch_tokens, "max_batch_tokens")
        _positive_or_none(self.threads, "threads")

    @classmethod
    def build(cls, config: EncoderConfig | None, options: Mapping[str, Any], owner: str) -> EncoderConfig:
        """``config`` (or the defaults) with ``options`` on top; unknown names are refused."""
        check_options(options, ENCODER_OPTIONS, owner)
        if config is not None and not isinstance(config, EncoderConfig):
            raise InvalidTypeError(
                f"config must be a shared.encoders.EncoderConfig, got {type(config).__name__}"
            )
        base = config if config is not None else _DEFAULT
        return dataclasses.replace(base, **options) if options else base

    def sharing_key(self) -> tuple[Any, ...]:
        """The options that change the vectors (``load_encoder`` shares one instance per key)."""
        return tuple(getattr(self, name) for name in _KEY_FIELDS)

    def max_length_within(self, limit: int, default: int | None = None) -> int:
        """``max_length`` checked against the model's ``limit`` (``default`` or ``limit`` when None)."""
        if self.max_length is None:
            return limit if default is None else default
        if not 4 <= self.max_length <= limit:
            raise InvalidInputError(
                f"max_length={self.max_length} is out of range: this model takes 4..{limit}"
            )
        return self.max_length


class EncoderOptions(TypedDict, total=False):
    """:class:`EncoderConfig`'s fields as keywords (``**options: Unpack[EncoderOptions]``)."""

    device: Any
    fp16: bool | None
    precision: str
    max_length: int | None
    truncate_dim: int | None
    query_instruction: str | None
    document_instruction: str | None
    batch_size: int
    show_progress: bool
    cache_size: int
    max_batch_tokens: int | None
    threads: int | None


_FIELDS = {f.name: f for f in dataclasses.fields(EncoderConfig)}
_KEY_FIELDS = tuple(name for name, f in _FIELDS.items() if f.metadata["key"])
_DEFAULT = EncoderConfig()
#: The names of the encoder options, in declaration order.
ENCODER_OPTIONS: frozenset[str] = frozenset(_FIELDS)


def encoder_option_default(name: str) -> Any:
    """The default of encoder option ``name`` (for an adapter's field)."""
    return _FIELDS[name].default


def encoder_option_doc(name: str) -> str:
    """The one-line description of encoder option ``name``."""
    return str(_FIELDS[name].metadata["doc"])


def options_from(values: Mapping[str, Any], renamed: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The encoder options among ``values`` (e.g. an adapter's fields), under their own names.

    ``renamed`` maps an option to the name a framework knows it by (LlamaIndex's
    ``embed_batch_size`` for ``batch_size``).
    """
    names = dict(renamed or {})
    return {
        option: values[names.get(option, option)] for option in _FIELDS if names.get(option, option) in values
    }
