"""argon2id password hashing, run in worker threads so the event loop never waits on it.

argon2-cffi's defaults are RFC 9106's second recommended profile (argon2id,
t=3, m=64 MiB, p=4); a hash made with older parameters is upgraded at the next
successful login.

Each hash costs 64 MiB and a few hundred CPU milliseconds, so they run in a
small pool of their own (one thread per CPU): a burst of logins queues there
instead of taking the default executor's threads and gigabytes of memory.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from qris_soundbox.core.errors import ValidationFailed

MIN_LENGTH = 10
MAX_LENGTH = 256  # argon2 takes any length; this only bounds the work a request can ask for

_hasher = PasswordHasher()
_pool = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="argon2")
T = TypeVar("T")


async def _in_pool(func: Callable[..., T], *args: str) -> T:
    return await asyncio.get_running_loop().run_in_executor(_pool, func, *args)


def check_policy(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise ValidationFailed(f"password: at least {MIN_LENGTH} characters", details={"field": "password"})
    if len(password) > MAX_LENGTH:
        raise ValidationFailed(f"password: at most {MAX_LENGTH} characters", details={"field": "password"})
    return password


async def hash_password(password: str) -> str:
    return await _in_pool(_hasher.hash, check_policy(password))


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("not-a-real-password-only-spends-the-same-time")


async def verify_password(password_hash: str | None, password: str) -> tuple[bool, str | None]:
    """(matches, a new hash when the stored one should be upgraded).

    With no stored hash (unknown email) a dummy hash is verified anyway, so the
    answer takes as long as for a known email and does not reveal which emails exist.
    """
    stored: str = password_hash if password_hash else await _in_pool(_dummy_hash)
    password = password[: MAX_LENGTH + 1]
    try:
        await _in_pool(_hasher.verify, stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    if password_hash is None:
        return False, None
    if _hasher.check_needs_rehash(password_hash):
        return True, await _in_pool(_hasher.hash, password)
    return True, None
