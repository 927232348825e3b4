"""The one error the data layer raises on purpose."""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(Exception):
    """A dataset cannot be loaded; the message names the file and says what to do."""
