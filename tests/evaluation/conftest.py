"""Fixtures shared by the evaluation tests."""

import pytest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One simulated 96 x 96 field: four compact sources, one extended, one spurious."""
    from caesar_mrcnn.sim.writer import simulate_command

    out = tmp_path_factory.mktemp("sim") / "tiny"
    simulate_command(None, ["n_images=1", "field.nx=96", "field.ny=96", "compact.n=4",
                            "extended.n=1", "extended.n_multisland=0", "spurious.n=1",
                            "seed=3"], out, progress=False)
    return out
