"""The ranking tests work on matrices of at most a few hundred rows: one BLAS/torch thread is fastest.

Several threads per tiny product spin against each other (and against other test workers on a small
machine), which made these tests 5-10x slower; the limits are restored after the folder.
"""

from __future__ import annotations

import pytest
import torch
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="package", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(threads)
