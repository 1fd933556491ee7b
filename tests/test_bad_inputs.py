"""Bad inputs through the real ``caesar-mrcnn`` command: one-line errors, non-zero exit, and no
file written, overwritten or left half-done. Cases already covered elsewhere (bad FITS files,
missing weights, corrupt checkpoints, unknown options) are not repeated here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from caesar_mrcnn.cli import main

ROOT = Path(__file__).resolve().parents[1]
SIM_TINY = str(ROOT / "configs" / "sim" / "tiny.yaml")
DETECT_TINY = str(ROOT / "configs" / "detect" / "tiny.yaml")


def _error_line(capsys) -> str:
    """The command's stderr, checked to end in exactly one error line without a traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("caesar-mrcnn: error: ")
    assert sum("caesar-mrcnn: error:" in line for line in lines) == 1
    return lines[-1]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "field.fits"
    data = np.random.default_rng(0).normal(0, 1e-4, (64, 64)).astype(np.float32)
    fits.PrimaryHDU(data).writeto(path)
    return path


# --- infer: outputs are checked before any work ---------------------------------------------


@pytest.mark.parametrize("case", ["regions_is_folder", "json_is_folder", "catalog_is_image",
                                  "json_is_regions"])
def test_infer_refuses_outputs_that_clash(tmp_path, image, capsys, case):
    outs = tmp_path / "outs"
    outs.mkdir()
    (outs / "keep.reg").write_text("earlier regions\n")
    regions, extra = str(outs / "new.reg"), []
    if case == "regions_is_folder":
        regions = str(outs)
    elif case == "json_is_folder":
        extra = ["--json", str(outs)]
    elif case == "catalog_is_image":
        extra = ["--catalog", str(image)]
    else:
        regions, extra = str(outs / "keep.reg"), ["--json", str(outs / "keep.reg")]
    before_image, before_outs = image.read_bytes(), _tree(outs)
    rc = main(["infer", str(image), "--regions", regions, "--weights",
               str(tmp_path / "never_read.npz"), *extra])
    line = _error_line(capsys)
    assert rc != 0
    assert "folder" in line or "overwrite" in line
    assert image.read_bytes() == before_image
    assert _tree(outs) == before_outs


def test_infer_negative_overlap_names_the_option(tmp_path, image, capsys):
    rc = main(["infer", str(image), "--regions", str(tmp_path / "a.reg"), "--overlap", "-1"])
    line = _error_line(capsys)
    assert rc != 0 and "overlap: -1" in line and "None" not in line
    assert not (tmp_path / "a.reg").exists()


# --- simulate / make-cutouts ------------------------------------------------------------------


def test_simulate_into_a_file_says_it_is_a_file(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("keep me\n")
    assert main(["simulate", "--config", SIM_TINY, "--out", str(target), "--no-progress"]) != 0
    assert "is a file" in _error_line(capsys)
    assert target.read_text() == "keep me\n"


def test_make_cutouts_error_is_not_glued_to_the_progress_bar(tmp_path, capsys):
    rc = main(["make-cutouts", "--from-fits", str(tmp_path / "missing.fits"),
               "--out", str(tmp_path / "cut"), "--n", "4", "--size", "32"])
    assert rc != 0
    assert "missing.fits" in _error_line(capsys)
    assert not (tmp_path / "cut").exists()


# --- pretrain / backbones / ssl-eval ----------------------------------------------------------


@pytest.mark.parametrize("case", ["out_is_file", "registry_is_file", "bad_name"])
def test_pretrain_checks_out_registry_and_name_before_training(tmp_path, capsys, case):
    a_file = tmp_path / "a_file"
    a_file.write_text("x\n")
    data = tmp_path / "cutouts"
    data.mkdir()
    out, registry, name = tmp_path / "run", tmp_path / "registry", "fine_name"
    if case == "out_is_file":
        out = a_file
    elif case == "registry_is_file":
        registry = a_file
    else:
        name = "../bad name"
    rc = main(["pretrain", "--data", str(data), "--out", str(out), "--registry", str(registry),
               "--name", name, "--epochs", "1", "--no-progress"])
    line = _error_line(capsys)
    assert rc != 0 and ("--out" in line or "--registry" in line or "--name" in line)
    assert a_file.read_text() == "x\n"
    assert not (tmp_path / "run").exists() and not (tmp_path / "registry").exists()


def test_backbones_registry_that_is_a_file(tmp_path, capsys):
    a_file = tmp_path / "registry.txt"
    a_file.write_text("x\n")
    assert main(["backbones", "--registry", str(a_file)]) != 0
    assert "is a file" in _error_line(capsys)


@pytest.mark.parametrize("args", [["--k", "0"], ["--out", "."]])
def test_ssl_eval_bad_options_fail_before_work(tmp_path, capsys, args):
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    argv = ["ssl-eval", "--backbone", "none", "--data", str(tmp_path / "missing"), "--folds",
            "2", *[str(out_dir) if a == "." else a for a in args]]
    assert main(argv) != 0
    line = _error_line(capsys)
    assert "--k 0" in line or "is a folder" in line
    assert list(out_dir.iterdir()) == []


# --- train / evaluate / compare ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bad_inputs") / "sim"
    assert main(["simulate", "--config", SIM_TINY, "--out", str(out), "--n-images", "1",
                 "--no-progress"]) == 0
    return out


@pytest.mark.parametrize("case", ["steps_zero", "out_is_file"])
def test_train_bad_steps_and_out(tmp_path, sim_dir, capsys, case):
    a_file = tmp_path / "a_file"
    a_file.write_text("x\n")
    out, extra = tmp_path / "run", ["--steps", "1"]
    if case == "steps_zero":
        extra = ["--steps", "0"]
    else:
        out = a_file
    rc = main(["train", "--config", DETECT_TINY, "--data", str(sim_dir), "--out", str(out),
               *extra])
    line = _error_line(capsys)
    assert rc != 0 and ("--steps 0" in line or "is a file" in line)
    assert a_file.read_text() == "x\n" and not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["evaluate", "compare"])
def test_report_folder_that_is_a_file_fails_before_work(tmp_path, sim_dir, capsys, command):
    a_file = tmp_path / "a_file"
    a_file.write_text("x\n")
    weights = tmp_path / "never_read.npz"
    weights.write_bytes(b"not a detector")
    extra = ["--weights", str(weights)] if command == "evaluate" else ["--finders", "aegean"]
    rc = main([command, "--data", str(sim_dir), "--out", str(a_file / "report"), *extra])
    assert rc != 0
    assert "is a file, not a folder" in _error_line(capsys)
    assert a_file.read_text() == "x\n"


def test_compare_cores_zero(tmp_path, sim_dir, capsys):
    rc = main(["compare", "--data", str(sim_dir), "--out", str(tmp_path / "c"),
               "--finders", "aegean", "--cores", "0"])
    assert rc != 0 and "--cores" in _error_line(capsys)
    assert not (tmp_path / "c").exists()


def test_report_with_no_detections_is_complete(tmp_path, sim_dir):
    from caesar_mrcnn.evaluation.evaluate import load_truth
    from caesar_mrcnn.evaluation.report import write_report
    from caesar_mrcnn.evaluation.scoring import score_detections

    samples = load_truth(str(sim_dir))
    result = score_detections(samples, [[] for _ in samples])
    written = write_report(result, tmp_path / "report")
    names = {p.name for p in written}
    assert {"report.json", "completeness_reliability.png", "flux_ratio_vs_snr.png"} <= names
    assert all(p.stat().st_size > 0 for p in written)


# --- interruption -----------------------------------------------------------------------------


def test_sigterm_during_simulate_leaves_no_output_folder(tmp_path):
    out = tmp_path / "sim_big"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(
        [sys.executable, "-m", "caesar_mrcnn.cli", "simulate", "--config", SIM_TINY,
         "--set", "field.nx=512", "--set", "field.ny=512", "--n-images", "400",
         "--out", str(out), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 30
    while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "simulate ended before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == ("caesar-mrcnn: interrupted; no partial output was "
                                            "written")
    assert not out.exists()


def test_infer_plot_with_an_unknown_extension_is_refused(tmp_path, capsys):
    image = tmp_path / "img.fits"
    fits.PrimaryHDU(np.random.default_rng(0).normal(size=(64, 64)).astype("f4")).writeto(image)
    rc = main(["infer", str(image), "--regions", str(tmp_path / "out.reg"),
               "--plot", str(tmp_path / "overlay.fits")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0
    assert err[-1].startswith("caesar-mrcnn: error:") and "overlay.fits" in err[-1]
    assert not (tmp_path / "overlay.fits").exists()
    assert not (tmp_path / "out.reg").exists()
