"""The infer command layer: options over the configuration, image lists, per-image outputs."""

from __future__ import annotations

import pytest

from caesar_mrcnn.detection.command import (
    image_stem,
    infer_config,
    out_dir_outputs,
    parse_kinds,
    read_image_list,
)
from caesar_mrcnn.errors import ConfigError, InputImageError, OutputError


def test_flags_win_over_file_and_overrides(tmp_path):
    path = tmp_path / "infer.yaml"
    path.write_text("score_thr: 0.2\nmin_snr: 3\ntile: 128\n")
    cfg = infer_config(path, ["score_thr=0.3", "fit_compact=false"], score_thr=0.4, tile=None)
    assert (cfg.score_thr, cfg.min_snr, cfg.tile, cfg.fit_compact) == (0.4, 3.0, 128, False)
    with pytest.raises(ConfigError, match=r"--set mask_thr=7: mask_thr"):
        infer_config(path, ["mask_thr=7"])
    with pytest.raises(ConfigError, match="overlap: -1"):
        infer_config(None, (), overlap=-1)


def test_image_list(tmp_path):
    listing = tmp_path / "images.txt"
    listing.write_text("# FIRST cutouts\na.fits\n\n  sub/b.fits  \n")
    assert read_image_list(listing) == ["a.fits", "sub/b.fits"]
    listing.write_text("# nothing\n")
    with pytest.raises(InputImageError, match="names no image"):
        read_image_list(listing)
    with pytest.raises(InputImageError, match="cannot read"):
        read_image_list(tmp_path / "missing.txt")


def test_outputs_named_after_each_image(tmp_path):
    assert image_stem("x/field.fits") == "field"
    assert image_stem("x/field.fits.gz") == "field"
    assert image_stem("x/J1200+30.FITS") == "J1200+30"
    plans = out_dir_outputs(["a/one.fits", "a/two.fits"], tmp_path, ("regions", "json"))
    assert plans[0] == {"regions": str(tmp_path / "one.reg"), "catalog": None,
                        "json": str(tmp_path / "one.json"), "plot": None}
    with pytest.raises(OutputError, match="would overwrite"):
        out_dir_outputs(["a/one.fits", "b/one.fits"], tmp_path, ("regions",))
    a_file = tmp_path / "f"
    a_file.write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        out_dir_outputs(["a.fits"], a_file, ("regions",))


def test_write_kinds():
    assert parse_kinds("regions,json,regions") == ("regions", "json")
    with pytest.raises(ConfigError, match="--write"):
        parse_kinds("regions,png")


def test_the_component_table_beside_a_catalogue_is_checked_like_any_output(tmp_path):
    from caesar_mrcnn.detection.infer import check_outputs

    image = tmp_path / "cat_components.csv"
    image.write_text("x")
    with pytest.raises(OutputError, match="component table output would overwrite the input"):
        check_outputs({"catalog": tmp_path / "cat.csv"}, [image])
    with pytest.raises(OutputError, match="component table output would overwrite the json"):
        check_outputs({"catalog": tmp_path / "a.ecsv", "json": tmp_path / "a_components.ecsv"})
    (tmp_path / "b_components.vot").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        check_outputs({"catalog": tmp_path / "b.vot"})
    check_outputs({"catalog": tmp_path / "c.fits", "json": tmp_path / "c_components.fits"})
