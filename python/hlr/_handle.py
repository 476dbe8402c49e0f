"""Ownership of C handles: each is freed exactly once."""

import threading

_lock = threading.Lock()
_live = [0]  # handles created by the package and not yet freed or handed to C


def live_handles():
    """How many C handles the package owns right now (tests use it)."""
    return _live[0]


class Owner:
    """Owns one C pointer and frees it exactly once.

    The pointer is freed by release(), or when the last reference to the
    Owner goes away; detach() hands it over to someone else (a model that
    took ownership) without freeing it.  Objects that borrow memory from the
    handle (parameter views, layers of a model) keep a reference to its
    Owner, so the memory lives as long as they do.
    """

    __slots__ = ("ptr", "_free", "_after", "__weakref__")

    def __init__(self, ptr, free, after=None):
        self.ptr = ptr
        self._free = free
        self._after = after  # an object that must outlive the handle (freed after it)
        with _lock:
            _live[0] += 1

    def release(self):
        with _lock:
            ptr, self.ptr = self.ptr, None
            if ptr is None:
                return
            _live[0] -= 1
        self._free(ptr)
        self._after = None

    def detach(self):
        with _lock:
            ptr, self.ptr = self.ptr, None
            if ptr is not None:
                _live[0] -= 1
        return ptr

    def __del__(self):
        try:
            self.release()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass
