"""Weighted mixes of unlabelled SNR cutouts for pretraining (``data.input: snr3-v1``).

``data.sources`` lists the sources, each a mapping ``{kind, path, weight}``:

* ``mirabest``: the MiraBest training batches (folder or tarball; labels ignored, the test
  batch never read), mapped to noise units and resampled (:mod:`ssl_backbones.mirabest`);
* ``fields``: real FITS images (a file or a folder searched recursively), cut at random and on
  sources after a background/rms estimate (:mod:`ssl_backbones.fields`); evaluation images are
  excluded by name;
* ``folder``: a folder of same-size FITS cutouts (``make-cutouts``), each scaled by its own
  sigma-clipped median and rms and resampled with its header beam; a folder of evaluation
  images is refused.

Every cutout becomes a ``cutout_size``-pixel square at the reference beam sampling (centre crop
or zero pad). An epoch holds ``mix_size`` cutouts (default: all of them), drawn from each
source in proportion to its weight (without repeats until a source is used up).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ssl_backbones.errors import PretrainConfigError

log = logging.getLogger(__name__)

KINDS = ("mirabest", "fields", "folder")


def check_sources(sources: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validated copies of ``data.sources`` entries (``weight`` defaults to 1)."""
    out = []
    for i, s in enumerate(sources):
        where = f"data.sources[{i}]"
        if not isinstance(s, Mapping):
            raise PretrainConfigError(f"{where}: give a mapping {{kind, path, weight}}")
        unknown = set(s) - {"kind", "path", "weight", "per_image", "beam_pix"}
        if unknown:
            raise PretrainConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        kind = s.get("kind")
        if kind not in KINDS:
            raise PretrainConfigError(f"{where}.kind: {kind!r}; use {', '.join(KINDS)}")
        if not s.get("path"):
            raise PretrainConfigError(f"{where}.path: missing")
        weight = float(s.get("weight", 1.0))
        if not weight > 0:
            raise PretrainConfigError(f"{where}.weight: must be positive")
        out.append({**s, "weight": weight})
    return out


def _fit(images: np.ndarray, size: int) -> np.ndarray:
    from ssl_backbones.mirabest import centre_crop

    return centre_crop(images, size).astype(np.float32)


def folder_cutouts(folder: str | Path, size: int, beam_pix: float | None = None
                   ) -> tuple[np.ndarray, list[Path]]:
    """Cutouts of a FITS folder as reference-sampled SNR maps ``[N, size, size]``."""
    from astropy.io import fits

    from ssl_backbones.data import list_fits
    from ssl_backbones.fields import beam_pixels, is_excluded, robust_stats
    from ssl_backbones.mirabest import resample
    from ssl_backbones.radio_input import resample_factor

    if is_excluded(folder):
        raise PretrainConfigError(f"data.sources: {folder}: evaluation images (listed in "
                                  "ssl_backbones.fields.EXCLUDED); never pretrain on them")
    files = list_fits(folder)
    if not files:
        raise PretrainConfigError(f"data.sources: {folder}: no FITS cutouts (*.fits)")
    out = []
    for f in files:
        with fits.open(f) as hdul:
            data = np.squeeze(np.asarray(hdul[0].data, dtype=np.float32))
            beam = beam_pixels(hdul[0].header) or beam_pix
        if data.ndim != 2 or np.mean(~np.isfinite(data)) > 0.5:
            continue
        med, rms = robust_stats(data)
        if not (np.isfinite(rms) and rms > 0):
            continue
        snr = np.where(np.isfinite(data), (data - med) / rms, 0.0)
        out.append(_fit(resample(snr[None], resample_factor(beam)), size)[0])
    if not out:
        raise PretrainConfigError(f"data.sources: {folder}: no usable cutouts")
    return np.stack(out), files


def load_source(spec: Mapping[str, Any], size: int, seed: int, per_image: int
                ) -> tuple[np.ndarray, list[Path]]:
    """All cutouts ``[N, size, size]`` (float32 SNR) of one source, and the files read."""
    kind, path = spec["kind"], Path(spec["path"]).expanduser()
    if kind == "mirabest":
        from ssl_backbones.mirabest import pretrain_images

        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()
                                                     and "test" not in p.name)
        return _fit(pretrain_images(path), size), files
    if kind == "fields":
        from ssl_backbones.fields import load_field_cutouts

        return load_field_cutouts([path], size, int(spec.get("per_image", per_image)), seed)
    return folder_cutouts(path, size, spec.get("beam_pix"))


def auto_sources(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Equal-weight sources for plain ``--data`` paths: MiraBest batches, a folder of cutouts,
    or real images."""
    from ssl_backbones.data import list_fits
    from ssl_backbones.mirabest import is_mirabest

    out = []
    for p in map(Path, paths):
        if is_mirabest(p):
            kind = "mirabest"
        elif p.is_dir() and list_fits(p):
            kind = "folder"
        else:
            kind = "fields"
        out.append({"kind": kind, "path": str(p), "weight": 1.0})
    return out


def load_mix(sources: Sequence[Mapping[str, Any]], size: int, seed: int, per_image: int = 256,
             mix_size: int = 0) -> tuple[np.ndarray, list[Path], list[dict[str, Any]]]:
    """The weighted mix of :data:`KINDS` sources.

    Returns
    -------
    images : numpy.ndarray
        ``[M, size, size, 1]`` float32 SNR, grouped by source (the loader shuffles).
    files : list of Path
        Every file read (for the data digest).
    summary : list of dict
        Per source: kind, path, weight, available cutouts and cutouts used.
    """
    specs = check_sources(sources)
    if not specs:
        raise PretrainConfigError("data.sources: empty; give at least one source")
    rng = np.random.default_rng(seed)
    loaded = [load_source(s, size, seed, per_image) for s in specs]
    total = mix_size or sum(len(a) for a, _ in loaded)
    weights = np.array([s["weight"] for s in specs])
    counts = np.round(weights / weights.sum() * total).astype(int)
    arrays, files, summary = [], [], []
    for spec, (arr, fs), n in zip(specs, loaded, counts):
        reps = int(np.ceil(n / len(arr)))
        idx = np.concatenate([rng.permutation(len(arr)) for _ in range(max(reps, 1))])[:n]
        arrays.append(arr[idx])
        files += fs
        summary.append({"kind": spec["kind"], "path": str(spec["path"]),
                        "weight": spec["weight"], "available": int(len(arr)), "used": int(n)})
        log.info("source %s %s: %d cutouts, %d per epoch", spec["kind"], spec["path"],
                 len(arr), n)
    return np.concatenate(arrays)[..., None], files, summary
