"""Run by ``test_process_faults``: ``faceleaks run`` (model stages faked) whose membership stage blocks in
process-pool workers, so the test can ``kill -9`` the run. Arguments: marks folder, output folder, cache folder."""

import sys

if __name__ == "__main__":  # the spawned workers import this module as __mp_main__: keep them light
    import numpy as np
    import pytest

    from faceleaks.cli.main import app
    from faceleaks.executor import run_tasks
    from tests.faults.kill_target import block
    from tests.faults.test_stage_faults import _stages

    def membership():
        return run_tasks(block, [0, 1], backend="process", workers=2, shared=np.ones((4, 4), np.float32))

    _stages(pytest.MonkeyPatch(), membership)
    app(["run", "--quick", "--out", sys.argv[2], "--cache-dir", sys.argv[3], "--no-progress"])
