"""Run by ``test_process_faults``: process-pool tasks that block, so the test can ``kill -9`` this process."""

import os
import sys
import time
from pathlib import Path

import numpy as np

from faceleaks.executor import run_tasks


def block(task, shared):
    Path(sys.argv[1], f"worker-{os.getpid()}").write_text(str(float(shared.sum())))
    time.sleep(120)
    return task


if __name__ == "__main__":
    run_tasks(block, [0, 1], backend="process", workers=2, shared=np.ones((4, 4), np.float32))
