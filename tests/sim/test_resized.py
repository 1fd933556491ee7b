"""Resizing a simulation configuration: counts follow the field area."""

from pathlib import Path

from caesar_mrcnn.config import load_config
from caesar_mrcnn.sim.config import SimConfig, resized

DEMO = Path(__file__).resolve().parents[2] / "configs" / "sim" / "demo.yaml"


def test_counts_scale_with_area_and_artefacts_keep_hosts():
    base = load_config(SimConfig, DEMO)
    quarter = resized(base, base.field.nx // 2)
    assert (quarter.field.nx, quarter.field.ny) == (base.field.nx // 2,) * 2
    assert quarter.compact.n == round(base.compact.n / 4)
    assert quarter.extended.n == round(base.extended.n / 4)
    assert quarter.extended.n_multisland == round(base.extended.n_multisland / 4)
    tiny = resized(base, 16)
    assert tiny.spurious.n <= tiny.compact.n
    assert base.field.nx == 4096  # the original is left as it was
