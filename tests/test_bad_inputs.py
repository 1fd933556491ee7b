"""Bad inputs through the installed ``caesar-mrcnn`` command, each run as its own process: one
error line on stderr, a non-zero exit status, and no file written, overwritten or left half-done.

Most failures are found before TensorFlow is imported, so these runs take about a second; the
few that need the detector share processes (a batch ``infer`` over several bad images).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SIM_TINY = ROOT / "configs" / "sim" / "tiny.yaml"
DETECT_TINY = ROOT / "configs" / "detect" / "tiny.yaml"


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def image(tmp_path, trouble_fits) -> Path:
    return trouble_fits("good", tmp_path)


# --- infer: outputs and options are checked before any work ---------------------------------


@pytest.mark.parametrize("case", ["regions_is_folder", "json_is_folder", "catalog_is_image",
                                  "json_is_regions"])
def test_infer_refuses_outputs_that_clash(tmp_path, image, cli, case):
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
    proc = cli("infer", image, "--regions", regions, "--weights",
               tmp_path / "never_read.npz", *extra)
    line = cli.error_line(proc)
    assert "folder" in line or "overwrite" in line
    assert image.read_bytes() == before_image
    assert _tree(outs) == before_outs


@pytest.mark.parametrize("args, named", [
    (["--overlap", "-1"], "overlap: -1"),
    (["--set", "mask_thr=2"], "--set mask_thr=2"),
    (["--set", "min_snr=lots"], "--set min_snr=lots"),
    (["--set", "match_iou"], "--set match_iou"),
    (["--beam", "wide"], "--beam"),
])
def test_infer_bad_option_names_it(tmp_path, image, cli, args, named):
    proc = cli("infer", image, "--regions", tmp_path / "a.reg", *args)
    line = cli.error_line(proc)
    assert named in line and "None" not in line
    assert not (tmp_path / "a.reg").exists()


@pytest.mark.parametrize("kind", ["text", "truncated", "cube3d", "cube4d", "empty", "missing"])
def test_infer_bad_image_one_line(tmp_path, cli, trouble_fits, kind):
    path = tmp_path / "missing.fits" if kind == "missing" else trouble_fits(kind, tmp_path)
    proc = cli("infer", path, "--regions", tmp_path / "out.reg")
    assert str(path) in cli.error_line(proc)
    assert not (tmp_path / "out.reg").exists()


def test_infer_plot_with_an_unknown_extension_is_refused(tmp_path, image, cli):
    proc = cli("infer", image, "--regions", tmp_path / "out.reg",
               "--plot", tmp_path / "overlay.fits")
    assert "overlay.fits" in cli.error_line(proc)
    assert not (tmp_path / "overlay.fits").exists()
    assert not (tmp_path / "out.reg").exists()


@pytest.mark.parametrize("case", ["missing", "corrupt"])
def test_infer_bad_weights(tmp_path, image, cli, case):
    weights = tmp_path / "detector.npz"
    if case == "corrupt":
        weights.write_bytes(b"PK\x03\x04 not really a detector")
    proc = cli("infer", image, "--regions", tmp_path / "out.reg", "--weights", weights)
    assert str(weights) in cli.error_line(proc)
    assert not (tmp_path / "out.reg").exists()


def test_infer_batch_reports_each_bad_image_and_goes_on(tmp_path, cli, trouble_fits):
    """One process (one TensorFlow start-up) for every image-level failure behind the model."""
    bad = [trouble_fits(k, tmp_path) for k in ("all_nan", "text", "truncated", "cube4d", "empty")]
    good = trouble_fits("good", tmp_path)
    out = tmp_path / "out"
    proc = cli("infer", *bad, good, "--out-dir", out, "--write", "regions,catalog,json")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "caesar-mrcnn: error:" in line]
    assert len(errors) == len(bad), proc.stderr
    for path, line in zip(bad, errors):
        assert line.startswith(f"caesar-mrcnn: error: {path}"), line
    assert "every pixel is NaN" in errors[0]
    assert sorted(p.name for p in out.iterdir()) == ["good.json", "good.reg",
                                                     "good_catalog.fits"]
    assert f"1 of {len(bad) + 1} images done" in proc.stdout


def test_infer_many_images_need_out_dir_and_distinct_names(tmp_path, image, cli,
                                                          trouble_fits):
    other = tmp_path / "sub"
    other.mkdir()
    twin = trouble_fits("good", other)
    proc = cli("infer", image, twin, "--regions", tmp_path / "a.reg")
    assert "--out-dir" in cli.error_line(proc)
    proc = cli("infer", image, twin, "--out-dir", tmp_path / "out")
    assert "overwrite" in cli.error_line(proc)
    listing = tmp_path / "list.txt"
    listing.write_text("# nothing but a comment\n\n")
    proc = cli("infer", "--list", listing, "--out-dir", tmp_path / "out")
    assert "--list" in cli.error_line(proc)
    assert not (tmp_path / "out").exists() and not (tmp_path / "a.reg").exists()


# --- every command: bad --set and bad --config name what is wrong ----------------------------


COMMANDS = {
    "simulate": ["--config", SIM_TINY, "--out", "{tmp}/sim"],
    "make-cutouts": ["--config", SIM_TINY, "--out", "{tmp}/cut", "--n", "2"],
    "pretrain": ["--data", "{tmp}", "--out", "{tmp}/run"],
    "backbones": [],
    "ssl-eval": ["--backbone", "ssl_byol_r18", "--data", "{tmp}"],
    "train": ["--config", DETECT_TINY, "--data", "{tmp}", "--out", "{tmp}/run"],
    "infer": ["{image}", "--regions", "{tmp}/a.reg"],
    "evaluate": ["--data", "{sim}", "--out", "{tmp}/rep"],
    "compare": ["--data", "{sim}", "--out", "{tmp}/rep", "--finders", "aegean"],
    "inspect": ["{image}"],
}


def _args(command: str, tmp: Path, image: Path, sim: Path) -> list[str]:
    return [command] + [str(a).format(tmp=tmp, image=image, sim=sim) for a in COMMANDS[command]]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_unknown_set_key_is_named(tmp_path, image, sim_dir, cli, command):
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = cli(*_args(command, tmp_path, image, sim_dir), "--set", "nope.key=1")
    line = cli.error_line(proc)
    assert "--set nope.key=1" in line and "unknown option nope" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("command", ["simulate", "infer", "backbones", "train", "evaluate"])
def test_bad_config_file_is_named(tmp_path, image, sim_dir, cli, command):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tile: [1, 2\n")
    args = _args(command, tmp_path, image, sim_dir)
    if "--config" in args:
        i = args.index("--config")
        del args[i:i + 2]
    before = sorted(p.name for p in tmp_path.iterdir())
    line = cli.error_line(cli(*args, "--config", bad))
    assert str(bad) in line and "YAML" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# --- simulate / make-cutouts ------------------------------------------------------------------


def test_simulate_into_a_file_says_it_is_a_file(tmp_path, cli):
    target = tmp_path / "notes.txt"
    target.write_text("keep me\n")
    proc = cli("simulate", "--config", SIM_TINY, "--out", target, "--no-progress")
    assert "is a file" in cli.error_line(proc)
    assert target.read_text() == "keep me\n"


def test_make_cutouts_error_is_not_glued_to_the_progress_bar(tmp_path, cli):
    proc = cli("make-cutouts", "--from-fits", tmp_path / "missing.fits",
               "--out", tmp_path / "cut", "--n", "4", "--size", "32")
    assert "missing.fits" in cli.error_line(proc, only=False)  # after the bar, on its own line
    assert not (tmp_path / "cut").exists()


# --- pretrain / backbones / ssl-eval ----------------------------------------------------------


@pytest.mark.parametrize("case", ["out_is_file", "registry_is_file", "bad_name"])
def test_pretrain_checks_out_registry_and_name_before_training(tmp_path, cli, case):
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
    proc = cli("pretrain", "--data", data, "--out", out, "--registry", registry,
               "--name", name, "--epochs", "1", "--no-progress")
    line = cli.error_line(proc)
    assert "--out" in line or "--registry" in line or "--name" in line
    assert a_file.read_text() == "x\n"
    assert not (tmp_path / "run").exists() and not (tmp_path / "registry").exists()


def test_backbones_registry_that_is_a_file(tmp_path, cli):
    a_file = tmp_path / "registry.txt"
    a_file.write_text("x\n")
    assert "is a file" in cli.error_line(cli("backbones", "--registry", a_file))
    # the same option from --set: the flag's check, the override's value
    assert "is a file" in cli.error_line(cli("backbones", "--set", f"registry={a_file}"))


@pytest.mark.parametrize("args", [["--k", "0"], ["--out", "."], ["--set", "k=0"]])
def test_ssl_eval_bad_options_fail_before_work(tmp_path, cli, args):
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    proc = cli("ssl-eval", "--backbone", "none", "--data", tmp_path / "missing", "--folds", "2",
               *[str(out_dir) if a == "." else a for a in args])
    line = cli.error_line(proc)
    assert "--k 0" in line or "is a folder" in line
    assert list(out_dir.iterdir()) == []


# --- train / evaluate / compare ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory, cli) -> Path:
    out = tmp_path_factory.mktemp("bad_inputs") / "sim"
    proc = cli("simulate", "--config", SIM_TINY, "--out", out, "--n-images", "1",
               "--no-progress")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("case", ["steps_zero", "out_is_file", "corrupt_checkpoint"])
def test_train_bad_steps_out_and_checkpoint(tmp_path, sim_dir, cli, case):
    a_file = tmp_path / "a_file"
    a_file.write_text("x\n")
    out, extra = tmp_path / "run", ["--steps", "1"]
    if case == "steps_zero":
        extra = ["--steps", "0"]
    elif case == "out_is_file":
        out = a_file
    else:
        (out / "checkpoints").mkdir(parents=True)
        (out / "checkpoints" / "ckpt-00000002.npz").write_bytes(b"PK\x03\x04 truncated")
        extra = ["--steps", "3", "--resume"]
    before = _tree(tmp_path)
    proc = cli("train", "--config", DETECT_TINY, "--data", sim_dir, "--out", out, *extra)
    line = cli.error_line(proc, only=False)
    assert "--steps 0" in line or "is a file" in line or "corrupt" in line
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("command", ["evaluate", "compare"])
def test_report_folder_that_is_a_file_fails_before_work(tmp_path, sim_dir, cli, command):
    a_file = tmp_path / "a_file"
    a_file.write_text("x\n")
    weights = tmp_path / "never_read.npz"
    weights.write_bytes(b"not a detector")
    extra = ["--weights", weights] if command == "evaluate" else ["--finders", "aegean"]
    proc = cli(command, "--data", sim_dir, "--out", a_file / "report", *extra)
    assert "is a file, not a folder" in cli.error_line(proc)
    assert a_file.read_text() == "x\n"


def test_evaluate_bad_detections(tmp_path, sim_dir, cli):
    notes = tmp_path / "notes.json"
    notes.write_text('{"rows": []}\n')
    for detections, expected in [(tmp_path / "nowhere", "no such file"),
                                 (notes, "not a caesar-mrcnn catalogue"),
                                 (tmp_path, "no tiny_00000.json")]:
        proc = cli("evaluate", "--data", sim_dir, "--detections", detections,
                   "--out", tmp_path / "rep")
        assert expected in cli.error_line(proc)
    assert not (tmp_path / "rep").exists()


def test_compare_cores_zero(tmp_path, sim_dir, cli):
    proc = cli("compare", "--data", sim_dir, "--out", tmp_path / "c", "--finders", "aegean",
               "--cores", "0")
    assert "--cores" in cli.error_line(proc)
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


def test_sigterm_during_simulate_leaves_no_output_folder(tmp_path, cli):
    out = tmp_path / "sim_big"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(
        [str(cli.path), "simulate", "--config", str(SIM_TINY), "--set", "field.nx=512",
         "--set", "field.ny=512", "--n-images", "400", "--out", str(out), "--no-progress"],
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
