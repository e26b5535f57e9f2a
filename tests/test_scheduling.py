"""The xdist scheduler keeps a class, or a parametrized function's cases, on one worker."""

from __future__ import annotations

import pytest

from tests.scheduling import GroupsTogetherScheduling, group_of


class FakeConfig:
    def getvalue(self, name):
        return {"tx": ["2*popen"]}[name]

    def getoption(self, name):
        return {"maxschedchunk": None}[name]


class FakeGateway:
    def __init__(self, name: str):
        self.id = name


class FakeNode:
    def __init__(self, name: str):
        self.name = name
        self.gateway = FakeGateway(name)
        self.shutting_down = False
        self.received: list[int] = []

    def send_runtest_some(self, indices):
        self.received.extend(indices)

    def shutdown(self):
        self.shutting_down = True


def collection() -> list[str]:
    """Single tests between groups of every kind, so that ``load``'s chunk edges fall inside
    groups."""
    ids = []
    for module in range(6):
        path = f"tests/test_m{module}.py"
        ids += [f"{path}::test_single_{n}" for n in range(3)]
        ids += [f"{path}::TestShared::test_{n}" for n in range(7)]
        ids += [f"{path}::test_cases[{n}-a::b]" for n in range(9)]  # '::' in a case id
        ids += [f"{path}::TestParams::test_x[{n}]" for n in range(4)]
    return ids


def run(scheduler_class) -> dict[str, set[str]]:
    """Run the scheduler until every test is done; which workers ran each group."""
    ids = collection()
    scheduler = scheduler_class(FakeConfig())
    nodes = [FakeNode("gw0"), FakeNode("gw1")]
    for node in nodes:
        scheduler.add_node(node)
        scheduler.add_node_collection(node, ids)
    scheduler.schedule()
    done = dict.fromkeys(nodes, 0)
    while scheduler.has_pending:
        # The worker with the least done so far finishes its next test (slow at first: 1 s).
        node = min((n for n in nodes if len(n.received) > done[n]), key=lambda n: done[n])
        scheduler.mark_test_complete(node, node.received[done[node]], duration=1.0)
        done[node] += 1
    workers: dict[str, set[str]] = {}
    for node in nodes:
        for index in node.received:
            workers.setdefault(group_of(ids[index]), set()).add(node.name)
    assert sorted(i for node in nodes for i in node.received) == list(range(len(ids)))
    return workers


def test_group_of():
    assert group_of("tests/a.py::TestX::test_y[1-2]") == "tests/a.py::TestX"
    assert group_of("tests/a.py::test_y[p::q]") == "tests/a.py::test_y"
    assert group_of("tests/a.py::test_y") == "tests/a.py::test_y"


def test_every_group_runs_on_one_worker_and_both_workers_run_tests():
    workers = run(GroupsTogetherScheduling)
    assert {group: names for group, names in workers.items() if len(names) > 1} == {}
    assert set().union(*workers.values()) == {"gw0", "gw1"}


def test_plain_load_splits_groups():
    """What the scheduler is for: xdist's ``load`` cuts chunks inside groups."""
    from xdist.scheduler import LoadScheduling

    workers = run(LoadScheduling)
    assert any(len(names) > 1 for names in workers.values())


# Per module: singles 0-2, the class 3-9, the function's cases 10-18, the other class 19-22.
@pytest.mark.parametrize(
    ("size", "sent"), [(3, 3), (4, 10), (10, 10), (11, 19), (19, 19), (20, 23)]
)
def test_a_chunk_grows_to_the_end_of_the_group_it_would_split_and_no_further(size, sent):
    scheduler = GroupsTogetherScheduling(FakeConfig())
    node = FakeNode("gw0")
    scheduler.add_node(node)
    scheduler.collection = collection()
    scheduler.pending[:] = range(len(scheduler.collection))
    scheduler._send_tests(node, size)
    assert node.received == list(range(sent))
