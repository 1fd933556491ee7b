"""The collectives under horovodrun's MPI controller, and what happens when a rank fails.

Plain ``mpirun`` launches the inference and training-step tests (test_horovod_infer.py,
test_horovod_training.py); ``horovodrun --gloo`` the collectives (test_horovod_collectives.py).
"""

from __future__ import annotations

import pytest
from hvdjob import check_collectives, check_ok, load_ranks, load_worker, requires_horovod, run_job

pytestmark = [pytest.mark.parallel, requires_horovod]


def test_horovodrun_mpi_controller(tmp_path):
    result = run_job("horovodrun-mpi", "hvd_worker.py", [str(tmp_path), "collectives"])
    check_ok(result)
    check_collectives(load_ranks(tmp_path, 2), load_worker(), 2)


@pytest.mark.parametrize("launcher", ["gloo", "mpirun"])
def test_failing_rank_ends_job_with_its_error(tmp_path, launcher):
    # Rank 0 waits in an allreduce that rank 1 never joins; the job must stop, not hang.
    result = run_job(launcher, "hvd_worker.py", [str(tmp_path), "fail"], timeout=90)
    assert result.returncode != 0
    assert "deliberate failure on rank 1" in result.stdout
    assert not (tmp_path / "rank0.npz").exists()
