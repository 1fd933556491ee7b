"""Write a simulated dataset: FITS images, COCO JSON, caesar JSON list, ground-truth table.

Layout of the output folder::

    images/<prefix>_00000.fits ...   simulated images (float32, Jy/beam, NaN = blank)
    coco.json                        COCO instance segmentation (RLE masks)
    caesar/datalist.txt              caesar-mrcnn JSON list: one JSON per image, one full-size
                                     mask FITS per object (unless ``caesar_json: false``)
    sources.ecsv, sources.fits       ground truth, one row per object, with units
    config.yaml                      the configuration that produced it (seed included)

The folder must be new or empty; if anything fails it is removed again, so no partial dataset
is left behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.table import Table

from caesar_mrcnn.classes import CLASS_NAMES
from caesar_mrcnn.data.dataset import Sample
from caesar_mrcnn.errors import ConfigError, OutputError
from caesar_mrcnn.io.atomic import atomic_path, make_output_folder
from caesar_mrcnn.sim.config import SimConfig
from caesar_mrcnn.sim.field import SimField, simulate_field
from caesar_mrcnn.sim.real_noise import RealNoiseBank


@dataclass
class DatasetSummary:
    """What :func:`simulate_dataset` wrote."""

    out_dir: Path
    n_images: int
    class_counts: dict[str, int] = field(default_factory=dict)
    coco_path: Path | None = None
    caesar_list: Path | None = None
    sources_path: Path | None = None

    def line(self) -> str:
        """One-line human summary."""
        counts = ", ".join(f"{k}={v}" for k, v in self.class_counts.items() if v)
        return (f"{self.n_images} images, {sum(self.class_counts.values())} objects "
                f"({counts or 'none'}) -> {self.out_dir}")


@contextlib.contextmanager
def fresh_output_dir(path: str | Path) -> Iterator[Path]:
    """Use ``path`` as a new output folder; remove it again if the block fails.

    Raises
    ------
    OutputError
        If ``path`` exists and is not an empty folder, or cannot be created.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: is a file, not a folder; choose a new --out")
    if path.exists() and any(path.iterdir()):
        raise OutputError(f"{path}: output folder exists and is not empty; choose a new --out "
                          "or remove it")
    existed = path.exists()
    make_output_folder(path)
    try:
        yield path
    except BaseException as exc:
        if existed:
            for child in path.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        else:
            shutil.rmtree(path, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: cannot write ({exc.strerror or exc}); nothing was "
                              "kept, free some space or choose another --out") from exc
        raise


def image_rngs(seed: int, n: int) -> list[np.random.Generator]:
    """Independent generators for images ``0..n-1``; image ``i`` does not depend on ``n``."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def write_field_fits(sim: SimField, path: str | Path) -> None:
    """Write a simulated image (with its 2- or 4-axis header) atomically."""
    from caesar_mrcnn.io.fits import write_image

    write_image(path, sim.fits_data(), sim.header)


def sources_table(samples: Sequence[Sample]) -> Table:
    """Ground-truth table: one row per object of every sample, with astropy units."""
    rows = []
    for s in samples:
        for a in s.annotations:
            t = a.attrs
            rows.append((Path(s.image_path).name, t.get("name", ""), a.category,
                         t.get("family", ""), t["x"], t["y"], t["ra"], t["dec"], t["peak_jyb"],
                         t["flux_jy"], t["snr"], t["major_arcsec"], t["minor_arcsec"],
                         t["pa_deg"], t["nislands"], a.area, *a.bbox, bool(t.get("border")),
                         bool(t.get("sidelobe_mixed")), t.get("host", "")))
    names = ("image", "name", "class", "family", "x", "y", "ra", "dec", "peak", "flux", "snr",
             "major", "minor", "pa", "nislands", "area", "bbox_y0", "bbox_x0", "bbox_y1",
             "bbox_x1", "border", "sidelobe_mixed", "host")
    dtypes = ("U64", "U64", "U24", "U16", "f8", "f8", "f8", "f8", "f8", "f8", "f8", "f8", "f8",
              "f8", "i4", "i8", "i4", "i4", "i4", "i4", "?", "?", "U64")
    table = Table(rows=rows if rows else None, names=names, dtype=dtypes)
    units = {"x": u.pix, "y": u.pix, "ra": u.deg, "dec": u.deg, "peak": u.Jy / u.beam,
             "flux": u.Jy, "major": u.arcsec, "minor": u.arcsec, "pa": u.deg, "area": u.pix**2,
             "bbox_y0": u.pix, "bbox_x0": u.pix, "bbox_y1": u.pix, "bbox_x1": u.pix}
    for col, unit in units.items():
        table[col].unit = unit
    table["x"].description = "true pixel column (0-based)"
    table["y"].description = "true pixel row (0-based)"
    table["peak"].description = "peak surface brightness of the noiseless object"
    table["flux"].description = "integrated flux density"
    table["major"].description = "FWHM major axis as seen in the image (beam-convolved)"
    table["snr"].description = "peak / noise rms"
    table["nislands"].description = "islands of the mask above the mask threshold"
    return table


def write_sources_table(samples: Sequence[Sample], out_dir: Path) -> Path:
    """Write ``sources.ecsv`` and ``sources.fits`` into ``out_dir``; returns the ECSV path."""
    table = sources_table(samples)
    ecsv = out_dir / "sources.ecsv"
    with atomic_path(ecsv) as tmp:
        table.write(tmp, format="ascii.ecsv")
    with atomic_path(out_dir / "sources.fits") as tmp:
        table.write(tmp, format="fits")
    return ecsv


def write_dataset_files(samples: Sequence[Sample], out_dir: Path,
                        caesar_json: bool = True) -> tuple[Path, Path | None]:
    """COCO JSON and (optionally) caesar JSON list of ``samples`` (images already written)."""
    from caesar_mrcnn.io.coco import write_coco

    coco_path = write_coco(list(samples), out_dir / "coco.json")
    if not caesar_json:
        return Path(coco_path), None
    from caesar_mrcnn.io.caesar_json import write_caesar_dataset

    caesar_dir = out_dir / "caesar"
    caesar_dir.mkdir(exist_ok=True)
    caesar_list = write_caesar_dataset(list(samples), caesar_dir, list_name="datalist.txt")
    return Path(coco_path), Path(caesar_list)


def simulate_dataset(cfg: SimConfig, out_dir: str | Path, *, n_images: int | None = None,
                     seed: int | None = None, progress: bool = False) -> DatasetSummary:
    """Simulate ``n_images`` fields and write them as a labelled dataset folder.

    Parameters
    ----------
    cfg : SimConfig
        What to simulate (``cfg.n_images`` and ``cfg.seed`` unless overridden here).
    out_dir : path-like
        New or empty output folder.
    n_images, seed : int, optional
        Override ``cfg.n_images`` / ``cfg.seed``.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    DatasetSummary

    Raises
    ------
    OutputError
        If ``out_dir`` is not new/empty or cannot be written.
    """
    from caesar_mrcnn.config import dump_config

    cfg = dataclasses.replace(cfg, n_images=cfg.n_images if n_images is None else int(n_images),
                              seed=cfg.seed if seed is None else int(seed))
    if cfg.n_images < 1:
        raise ConfigError(f"n_images: must be >= 1, got {cfg.n_images}")
    n = cfg.n_images
    counts = dict.fromkeys(CLASS_NAMES, 0)
    with fresh_output_dir(out_dir) as out:
        images = out / "images"
        images.mkdir()
        samples = []
        rngs = image_rngs(cfg.seed, n)
        backgrounds = (RealNoiseBank(cfg.noise.real_backgrounds)
                       if cfg.noise.real_prob > 0 else None)
        iterator = range(n)
        if progress:
            from tqdm import tqdm

            iterator = tqdm(iterator, desc="simulate", unit="image")
        for i in iterator:
            image_id = f"{cfg.name_prefix}_{i:05d}"
            sim = simulate_field(cfg, rngs[i], image_id=image_id, backgrounds=backgrounds)
            path = images / f"{image_id}.fits"
            write_field_fits(sim, path)
            sample = sim.to_sample(path)
            samples.append(sample)
            for k, v in sample.class_counts().items():
                counts[k] += v
        coco_path, caesar_list = write_dataset_files(samples, out, cfg.caesar_json)
        sources = write_sources_table(samples, out)
        dump_config(cfg, out / "config.yaml")
    return DatasetSummary(Path(out_dir), n, counts, coco_path, caesar_list, sources)


def simulate_command(config: str | Path | None, overrides: Sequence[str], out_dir: str | Path,
                     n_images: int | None = None, seed: int | None = None,
                     progress: bool = True) -> DatasetSummary:
    """``caesar-mrcnn simulate``: load the YAML configuration (+ overrides), then simulate."""
    from caesar_mrcnn.config import load_config

    cfg = load_config(SimConfig, config, list(overrides))
    return simulate_dataset(cfg, out_dir, n_images=n_images, seed=seed, progress=progress)
