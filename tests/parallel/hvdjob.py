"""Helpers of the multi-rank tests: launch real Horovod jobs (CPU ranks), read what ranks saved."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
WORKERS = Path(__file__).resolve().parent / "workers"
BIN = Path(sys.executable).parent


def horovod_tf_built() -> bool:
    """Horovod is installed with its TensorFlow extension (checked without importing TF)."""
    spec = importlib.util.find_spec("horovod")
    if spec is None or not spec.submodule_search_locations:
        return False
    tf_dir = Path(next(iter(spec.submodule_search_locations))) / "tensorflow"
    return any(tf_dir.glob("mpi_lib*.so"))


requires_horovod = pytest.mark.skipif(
    not horovod_tf_built(), reason="Horovod with TensorFlow support is not installed"
)


def _tool(name: str) -> str | None:
    local = BIN / name
    return str(local) if local.exists() else shutil.which(name)


def launcher_command(launcher: str, n_ranks: int) -> list[str]:
    """Command prefix that starts ``n_ranks`` local ranks with ``launcher``.

    launcher: "gloo" (horovodrun --gloo), "horovodrun-mpi" (horovodrun --mpi), "mpirun", or
    "none" (one plain process, no launcher).
    """
    if launcher == "none":
        return []
    if launcher in ("gloo", "horovodrun-mpi"):
        horovodrun = _tool("horovodrun")
        if horovodrun is None:
            pytest.skip("horovodrun is not on PATH")
        flag = "--gloo" if launcher == "gloo" else "--mpi"
        return [horovodrun, "-np", str(n_ranks), "-H", f"localhost:{n_ranks}", flag]
    if launcher == "mpirun":
        mpirun = _tool("mpirun")
        if mpirun is None:
            pytest.skip("mpirun (Open MPI) is not installed")
        return [mpirun, "-np", str(n_ranks), "--bind-to", "none", "--oversubscribe"]
    raise ValueError(launcher)


def run_job(
    launcher: str,
    script: str,
    args: list[str],
    n_ranks: int = 2,
    timeout: float = 120.0,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python workers/<script> ARGS`` on ``n_ranks`` ranks; kill the whole job on timeout.

    Returns the completed process (stdout and stderr merged into ``stdout``). A job still
    running after ``timeout`` seconds fails the test: a hang is a bug here.
    """
    env = dict(os.environ)
    env.update(
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMPI_MCA_rmaps_base_oversubscribe="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
        PATH=os.pathsep.join((str(BIN), env.get("PATH", ""))),
    )
    cmd = launcher_command(launcher, n_ranks)
    cmd += [sys.executable, str(WORKERS / script), *args]
    proc = subprocess.Popen(
        cmd,
        cwd=cwd or REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # own process group: a timeout kills launcher and ranks
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{launcher} job did not finish within {timeout:.0f} s:\n{_tail(out)}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, None)


def _tail(text: str, n_lines: int = 60) -> str:
    keep = [ln for ln in text.splitlines() if "oneDNN" not in ln and "absl::" not in ln]
    return "\n".join(keep[-n_lines:])


def check_ok(result: subprocess.CompletedProcess) -> None:
    """Fail with the job's output unless it exited 0."""
    assert result.returncode == 0, f"job exited {result.returncode}:\n{_tail(result.stdout)}"


def load_ranks(out_dir: Path, n_ranks: int = 2) -> list[dict[str, np.ndarray]]:
    """What each rank saved with ``np.savez(out_dir / f'rank{r}.npz')``, in rank order."""
    ranks = []
    for r in range(n_ranks):
        with np.load(out_dir / f"rank{r}.npz") as data:
            ranks.append({k: data[k] for k in data.files})
    return ranks


def load_worker(script: str = "hvd_worker.py"):
    """Import a worker script as a module (for its numpy-only data generators)."""
    spec = importlib.util.spec_from_file_location(Path(script).stem, WORKERS / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_collectives(ranks: list[dict[str, np.ndarray]], worker, n_ranks: int) -> None:
    """Check what workers/hvd_worker.py's "collectives" scenario saved against NumPy."""
    assert [str(r["context"]) for r in ranks] == ["HorovodContext"] * n_ranks
    assert [int(r["rank"]) for r in ranks] == list(range(n_ranks))
    assert {int(r["size"]) for r in ranks} == {n_ranks}
    assert sorted(int(r["local_rank"]) for r in ranks) == list(range(n_ranks))

    # allgather: uneven rows, rank order; gradient = sum of every rank's upstream gradient.
    expected = np.concatenate([worker.gather_rows(r) for r in range(n_ranks)])
    total = expected.shape[0]
    summed_weights = sum(worker.gather_weights(r, total) for r in range(n_ranks))
    offsets = np.cumsum([0] + [worker.gather_rows(r).shape[0] for r in range(n_ranks)])
    for q, r in enumerate(ranks):
        for mode in ("", "_graph"):  # eager, then inside tf.function
            np.testing.assert_array_equal(r[f"gathered{mode}"], expected)
            np.testing.assert_allclose(
                r[f"gather_grad{mode}"], summed_weights[offsets[q] : offsets[q + 1]], rtol=1e-6
            )

    # Gradient averaging: rank r sent (r + 1) * g.
    mean_factor = np.mean(np.arange(1, n_ranks + 1))
    for r in ranks:
        assert bool(r["avg_grad_none_kept"])
        np.testing.assert_allclose(r["avg_grad_0"], np.full((2, 2), mean_factor), rtol=1e-6)
        np.testing.assert_allclose(r["avg_grad_2"], np.array([1.0, 3.0]) * mean_factor, rtol=1e-6)
        np.testing.assert_allclose(r["avg_grad_fp16_0"], np.full((2, 2), mean_factor), rtol=1e-3)
        assert str(r["avg_grad_fp16_dtype"]) == "float32"
