"""Offline test tooling shipped with the provider: a Gemini API emulator and pytest fixtures."""

from __future__ import annotations

__all__: list[str] = []
