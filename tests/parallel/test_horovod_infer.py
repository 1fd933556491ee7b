"""Tiled inference of a mosaic on two ranks gives the catalogue of one process; only rank 0
writes."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from hvdjob import check_ok, requires_horovod, run_job

pytestmark = [pytest.mark.parallel, requires_horovod]

TILE, OVERLAP = 64, 16


@pytest.fixture(scope="module")
def mosaic(tmp_path_factory):
    from caesar_mrcnn.sim.writer import simulate_command

    out = tmp_path_factory.mktemp("sim") / "mosaic"
    # 160 x 160 px in 64 px tiles with 16 px overlap: a 3 x 3 grid, split 5 + 4 over 2 ranks,
    # with extended sources that cross tile borders.
    simulate_command(None, ["n_images=1", "field.nx=160", "field.ny=160", "compact.n=10",
                            "extended.n=2", "extended.n_multisland=1", "spurious.n=1",
                            "seed=5"], out, progress=False)
    return out


def test_two_ranks_give_the_single_process_catalogue(mosaic, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    for out, launcher, n in ((one, "none", 1), (two, "mpirun", 2)):
        args = [str(mosaic), str(out), str(TILE), str(OVERLAP)]
        check_ok(run_job(launcher, "infer_worker.py", args, n_ranks=n))

    assert (one / "returned_rank0.txt").read_text() == "SingleContext 1 True\n"
    assert (two / "returned_rank0.txt").read_text() == "HorovodContext 2 True\n"
    assert (two / "returned_rank1.txt").read_text() == "HorovodContext 2 False\n"
    # Rank 1 wrote nothing but its instrumentation file.
    assert {p.name for p in two.iterdir()} == {p.name for p in one.iterdir()} | {
        "returned_rank1.txt"
    }

    ref, got = Table.read(one / "catalogue.ecsv"), Table.read(two / "catalogue.ecsv")
    assert len(ref) >= 5
    assert ref.colnames == got.colnames
    for name in ref.colnames:
        a, b = np.asarray(ref[name]), np.asarray(got[name])
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b, a, rtol=1e-12, equal_nan=True, err_msg=name)
        else:
            np.testing.assert_array_equal(b, a, err_msg=name)
    assert (two / "sources.reg").read_text() == (one / "sources.reg").read_text()
