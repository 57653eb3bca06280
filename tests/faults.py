"""Fault injection for the crash-safety tests, from the outside.

The package has no fault hook (nothing a user's environment could trigger):
`Faults.install` wraps the writing functions of `xai_callback.publish.storage`, and
`staging.begin`, so that each call passes a numbered fault point before and
after it. At point `at`, `action(operation)` runs: a SIGKILL in a forked
child (tests/crash_child.py), or `die` in-process, after which every storage
call raises too, as if the process were gone (object stores on `ram://`
cannot outlive a process, so a kill is simulated there).
"""

import functools

from xai_callback.publish import staging, storage

WRITING = (
    "makedirs", "write_text", "rename", "claim_rename", "exchange", "rmtree", "remove",
    "copy_file", "link_or_copy", "sync_tree", "sync_dir",
)


class Killed(BaseException):
    """The simulated death of the process (not an Exception: nothing catches it)."""


class Faults:
    """Numbered fault points around every storage write; see the module docstring."""

    def __init__(self, at=None, action=None):
        """`action`: called at point `at`; "die" for `self.die`."""
        self.at, self.action = at, (self.die if action == "die" else action)
        self.count, self.trace, self.dead = 0, [], False

    def point(self, operation):
        if self.dead:
            raise Killed(operation)
        self.count += 1
        self.trace.append(operation)
        if self.action is not None and self.count == self.at:
            self.action(operation)

    def die(self, operation):
        self.dead = True
        raise Killed(operation)

    def install(self, monkeypatch=None):
        """Wraps the functions (undone by `monkeypatch`, else for good)."""
        def patch(module, name, wrapper):
            if monkeypatch is not None:
                monkeypatch.setattr(module, name, wrapper)
            else:
                setattr(module, name, wrapper)

        for name in WRITING:
            if hasattr(storage, name):
                patch(storage, name, self._around(getattr(storage, name), name))
        begin = staging.begin

        @functools.wraps(begin)
        def begin_then_point(*args, **kwargs):
            staged = begin(*args, **kwargs)
            self.point("begin")  # the staging write starts here
            return staged

        patch(staging, "begin", begin_then_point)
        return self

    def _around(self, function, name):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            self.point(name)
            result = function(*args, **kwargs)
            self.point(name)
            return result

        return wrapper


def drop_locks(staged):
    """What the kernel does when a writer dies: its lock goes, its files stay."""
    staged.writer._lock.release()
