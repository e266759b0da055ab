"""pytest fixtures for offline Gemini tests (placeholder until the emulator lands)."""

from __future__ import annotations
