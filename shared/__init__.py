"""m3-hybrid core: encoders, schema, quantization, query planning, backends and evaluation."""

from .tenancy import ALL

__all__ = ["ALL"]
