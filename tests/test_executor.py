"""The task executor: same results in order on every backend, the shared array reaches every task,
and a failing task is named."""

import numpy as np
import pytest

from faceleaks.errors import ConfigError, TaskError
from faceleaks.executor import run_tasks


def row_sum(task, shared):
    return float(shared[task["rows"]].sum()) * task["scale"]


def fail_on_three(task, shared):
    if task == 3:
        raise ValueError("boom")
    return task


def pid_of(task, shared):
    import os

    return os.getpid()


SHARED = np.arange(40, dtype=np.float32).reshape(10, 4)
TASKS = [{"name": f"t{i}", "rows": np.array([i, (i + 3) % 10]), "scale": i + 1} for i in range(6)]
EXPECTED = [row_sum(t, SHARED) for t in TASKS]


@pytest.mark.parametrize("backend", ["serial", "process"])
def test_results_in_task_order(backend):
    assert run_tasks(row_sum, TASKS, backend=backend, workers=2, shared=SHARED) == EXPECTED


def test_process_backend_uses_other_processes():
    import os

    pids = set(run_tasks(pid_of, list(range(4)), backend="process", workers=2))
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


@pytest.mark.parametrize("backend, where", [("serial", ""), ("process", " in a worker process")])
def test_failing_task_is_named(backend, where):
    with pytest.raises(TaskError, match=f"^task 3 failed{where}: ValueError: boom") as err:
        run_tasks(fail_on_three, list(range(5)), backend=backend, workers=2)
    assert err.value.__cause__ is not None


def test_bad_settings():
    with pytest.raises(ConfigError, match="unknown executor backend"):
        run_tasks(row_sum, TASKS, backend="threads")
    with pytest.raises(ConfigError, match="positive"):
        run_tasks(row_sum, TASKS, workers=0)
    assert run_tasks(row_sum, [], backend="process") == []


def test_ray_backend_matches_serial():
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'faceleaks[ray]'")
    assert run_tasks(row_sum, TASKS, backend="ray", workers=2, shared=SHARED) == EXPECTED
    with pytest.raises(TaskError, match="^task 3 failed on Ray: "):
        run_tasks(fail_on_three, list(range(5)), backend="ray", workers=2)


def mark_setup():
    import os

    os.environ["FACELEAKS_TEST_SETUP_RAN"] = str(os.getpid())


def setup_pid(task, shared):
    import os

    return os.environ.get("FACELEAKS_TEST_SETUP_RAN")


@pytest.mark.parametrize("backend", ["serial", "process"])
def test_setup_runs_in_workers_only_and_results_arrive_as_they_finish(backend, monkeypatch):
    import os

    monkeypatch.delenv("FACELEAKS_TEST_SETUP_RAN", raising=False)
    seen = []
    out = run_tasks(setup_pid, list(range(4)), backend=backend, workers=2, setup=mark_setup,
                    on_result=lambda i, r: seen.append(i))
    assert sorted(seen) == [0, 1, 2, 3]
    assert "FACELEAKS_TEST_SETUP_RAN" not in os.environ  # this process keeps its own settings
    if backend == "process":
        assert all(r is not None and r != str(os.getpid()) for r in out)
    else:
        assert out == [None] * 4
