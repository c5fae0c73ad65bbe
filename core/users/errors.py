"""User errors, each with its stable code and HTTP status (docs/merchants.md)."""

from __future__ import annotations

from qris_soundbox.core.errors import Conflict, NotFound


class UserNotFound(NotFound):
    pass


class UserExists(Conflict):
    """A user of this kind with this email exists (emails are unique per kind)."""

    code = "user_exists"


class OwnAccount(Conflict):
    """A user may not disable their own account or take away their own role (a locked-out console)."""

    code = "own_account"
