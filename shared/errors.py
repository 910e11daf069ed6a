"""The project's error hierarchy.

Every error we raise derives from :class:`M3HybridError`, so callers can catch
one class; the ValueError/TypeError subclasses keep ``except ValueError`` code
working too.
"""

from __future__ import annotations


class M3HybridError(Exception):
    """Base class of every error raised by m3-hybrid."""


class InvalidInputError(M3HybridError, ValueError):
    """A value has the right type but is not acceptable (names the offending item)."""


class InvalidTypeError(M3HybridError, TypeError):
    """A value has the wrong type (names the offending item)."""


class ModelLoadError(M3HybridError, ValueError):
    """A model could not be loaded, or its checkpoint layout is wrong."""


class ModelMismatchError(M3HybridError, ValueError):
    """A collection was built with a different encoder than the one now used."""


class StoreLockedError(M3HybridError, RuntimeError):
    """An embedded store is already open in another process (or object)."""


class BackendError(M3HybridError, RuntimeError):
    """The Qdrant backend failed, was unreachable, or timed out."""


class UnsupportedOperationError(M3HybridError, NotImplementedError):
    """The request asks for something this backend or mode cannot honour."""


class MissingDependencyError(M3HybridError, ImportError):
    """An optional dependency is not installed (names the extra that provides it)."""
