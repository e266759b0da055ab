"""The provider's version: one place, read by the package face, the provider info and the build."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
