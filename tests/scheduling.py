"""How pytest-xdist shares the tests out: ``--dist load``, except that a chunk of tests handed to
a worker never ends inside a group that shares rows.

A group is a test class, or the cases of one parametrized function: what ``shared_rows`` and the
other class- or module-scoped fixtures are made once for. ``load`` cuts its chunks anywhere, so
a class's tests could run on both workers, each making the class's rows (a whole ``seed_demo``
twice). The order stays pytest-django's (transactional tests, which flush the migrations' rows,
after the others): a chunk only grows to the end of the group it would have split.
"""

from __future__ import annotations

from xdist.scheduler import LoadScheduling


def group_of(nodeid: str) -> str:
    """``path::Class`` for a method, ``path::function`` for a function (its cases together)."""
    parts = nodeid.split("[", 1)[0].split("::")
    return "::".join(parts[:-1]) if len(parts) > 2 else "::".join(parts)


class GroupsTogetherScheduling(LoadScheduling):
    def _send_tests(self, node, num: int) -> None:
        if 0 < num < len(self.pending):
            last = group_of(self.collection[self.pending[num - 1]])
            while num < len(self.pending) and group_of(self.collection[self.pending[num]]) == last:
                num += 1
        super()._send_tests(node, num)
