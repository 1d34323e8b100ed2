"""Exception classes of the application layer."""

from core.errors import CmkdError


class StoreError(CmkdError):
    """The SQLite store is unreadable, or an audit chain does not verify."""


class PermissionDenied(CmkdError):
    """The acting user's role may not perform this action."""
