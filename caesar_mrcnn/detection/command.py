"""``caesar-mrcnn infer``: options to an :class:`InferConfig`, then one image or many.

One image writes the files named by ``--regions``/``--catalog``/``--json``/``--plot``. Many
images (``infer a.fits b.fits ... --out-dir DIR`` or ``--list FILE``) load the detector once —
its start-up (TensorFlow, weights) costs far more than a small cutout — and write, per image,
``DIR/<stem>.reg``, ``DIR/<stem>_catalog.fits`` and, when asked, ``DIR/<stem>.json`` and
``DIR/<stem>.png``. An image that fails is reported and the run goes on with the next one; the
caller sees every outcome and decides the exit status.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caesar_mrcnn.detection.infer import InferConfig, InferResult, check_outputs, infer_image
from caesar_mrcnn.errors import CaesarError, ConfigError, InputImageError, OutputError
from caesar_mrcnn.logs import HeldWarnings

OUT_DIR_KINDS = ("regions", "catalog", "json", "plot")
"""What ``--write`` may name; each is one file per image in ``--out-dir``."""

_NAMES = {"regions": "{stem}.reg", "catalog": "{stem}_catalog.fits", "json": "{stem}.json",
          "plot": "{stem}.png"}
_FITS_SUFFIXES = (".fits.gz", ".fits.fz", ".fits", ".fit", ".fts")


@dataclass
class ImageOutcome:
    """What happened to one image of a run: its result, or the error that stopped it."""

    image: str
    result: InferResult | None = None
    error: CaesarError | None = None


def infer_config(config: str | os.PathLike | None = None, overrides: Sequence[str] = (),
                 **options: Any) -> InferConfig:
    """:class:`InferConfig` from an optional YAML file, ``key=value`` overrides and options.

    ``options`` are command-line flags (``score_thr=0.3``); those that are None were not
    given and leave the file's value.

    Raises
    ------
    ConfigError
        Naming the file, the override or the option that is invalid.
    """
    from caesar_mrcnn.config import load_config

    cfg = load_config(InferConfig, config, overrides)
    given = {k: v for k, v in options.items() if v is not None}
    cfg = dataclasses.replace(cfg, **given)
    cfg.validate()
    return cfg


def add_infer_overrides(parser) -> None:
    """``--set KEY=VALUE`` (repeatable) on a benchmark's or script's ``argparse`` parser: the
    infer options that :func:`infer_config_of` then applies."""
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a caesar-mrcnn infer option, e.g. --set islands=false "
                             "(repeatable)")


def infer_config_of(parser, args) -> InferConfig:
    """The :class:`InferConfig` of ``args.overrides`` (:func:`add_infer_overrides`); a bad
    override ends the run through ``parser.error``, one line naming it."""
    try:
        return infer_config(None, args.overrides)
    except ConfigError as exc:
        parser.error(str(exc))


def read_image_list(path: str | os.PathLike) -> list[str]:
    """FITS paths from a text file: one per line; blank lines and ``#`` comments are skipped.

    Relative paths are relative to the current folder, as on the command line.

    Raises
    ------
    InputImageError
        If the file cannot be read or names no image.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not a text file"
        raise InputImageError(f"--list {path}: cannot read the image list ({reason})") from None
    images = [line.strip() for line in text.splitlines()
              if line.strip() and not line.lstrip().startswith("#")]
    if not images:
        raise InputImageError(f"--list {path}: names no image; write one FITS path per line")
    return images


def image_stem(image: str | os.PathLike) -> str:
    """File name of ``image`` without its FITS extension(s): the name of its outputs."""
    name = Path(image).name
    for suffix in _FITS_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[:-len(suffix)]
    return Path(name).stem or name


def parse_kinds(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"regions,catalog,json"`` -> the kinds of file written per image; checked."""
    kinds = [k.strip() for k in (text.split(",") if isinstance(text, str) else text)]
    unknown = [k for k in kinds if k not in OUT_DIR_KINDS]
    if unknown or not kinds:
        raise ConfigError(f"--write {','.join(kinds)}: name one or more of "
                          f"{', '.join(OUT_DIR_KINDS)}, comma-separated")
    return tuple(dict.fromkeys(kinds))


def out_dir_outputs(images: Sequence[str], out_dir: str | os.PathLike,
                    kinds: Sequence[str]) -> list[dict[str, str | None]]:
    """Per image, the output path of each kind (None for kinds not asked for).

    Raises
    ------
    OutputError
        If two images would write the same files (same name in different folders), or
        ``out_dir`` is a file.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"--out-dir {out_dir}: is a file, not a folder; give a folder")
    seen: dict[str, str] = {}
    plans = []
    for image in images:
        stem = image_stem(image)
        if stem in seen and seen[stem] != image:
            raise OutputError(f"{image}: its outputs would overwrite those of {seen[stem]} "
                              f"(both named {stem}); run them into different --out-dir")
        seen[stem] = image
        plans.append({k: (str(out_dir / _NAMES[k].format(stem=stem)) if k in kinds else None)
                      for k in OUT_DIR_KINDS})
    return plans


def infer_images(images: Sequence[str], out_dir: str | os.PathLike, *,
                 kinds: Sequence[str] = ("regions", "catalog"),
                 weights: str | os.PathLike | None = None, config: InferConfig | None = None,
                 plane: int | None = None, hdu: int | str | None = None,
                 beam: Any = None, ctx: Any = None) -> Iterator[ImageOutcome]:
    """Run the detector, loaded once, over many images; yield each image's outcome in order.

    A :class:`CaesarError` of one image (unreadable, all NaN, ...) is yielded, not raised, and
    the run goes on; errors of the run itself (weights, options, output folder) are raised
    before the first image.

    Parameters
    ----------
    images : sequence of path
        FITS images.
    out_dir : path-like
        Output folder (created when missing).
    kinds : sequence of str
        Files to write per image, from :data:`OUT_DIR_KINDS`.
    weights, config, plane, hdu, ctx :
        As for :func:`~caesar_mrcnn.detection.infer.infer_image`.
    beam : caesar_mrcnn.io.beam.Beam, optional
        Restoring beam that wins over the files' (``--beam``).
    """
    from caesar_mrcnn.detection.detector import load_detector

    plans = out_dir_outputs(images, out_dir, kinds)
    cfg = config or InferConfig()
    cfg.validate()
    detector = load_detector(weights)
    if ctx is None or ctx.is_root:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    if ctx is not None and ctx.size > 1:
        ctx.barrier()  # the folder exists before any rank checks its outputs
    for image, outputs in zip(images, plans):
        try:
            result = infer_image(image, detector=detector, config=cfg,
                                 regions=outputs["regions"], catalog=outputs["catalog"],
                                 json_path=outputs["json"], plot=outputs["plot"], plane=plane,
                                 hdu=hdu, ctx=ctx, beam=beam)
        except CaesarError as exc:
            yield ImageOutcome(str(image), error=exc)
        else:
            yield ImageOutcome(str(image), result=result)


def infer_command(images: Sequence[str], *, image_list: str | os.PathLike | None = None,
                  out_dir: str | os.PathLike | None = None,
                  write: str | Sequence[str] = "regions,catalog",
                  regions: str | os.PathLike | None = None,
                  catalog: str | os.PathLike | None = None,
                  json_path: str | os.PathLike | None = None,
                  plot: str | os.PathLike | None = None,
                  weights: str | os.PathLike | None = None,
                  config: str | os.PathLike | None = None, overrides: Sequence[str] = (),
                  options: dict[str, Any] | None = None, beam: str | None = None,
                  plane: int | None = None, hdu: int | str | None = None,
                  horovod: bool | None = None,
                  on_image: Callable[[ImageOutcome], None] | None = None,
                  progress: bool = False) -> list[ImageOutcome]:
    """``caesar-mrcnn infer``: check the options, then run one image or many.

    With ``out_dir`` every image is run (see :func:`infer_images`) and failures are returned
    as outcomes; without, exactly one image writes ``regions`` (and the other files given) and
    a failure raises. Under horovodrun, mpirun or srun the process joins the Horovod job
    (tiles split over ranks, rank 0 merges and writes); ``horovod=True`` requires that,
    ``horovod=False`` forces one process.

    Parameters
    ----------
    images : sequence of path
        FITS images named on the command line.
    image_list : path-like, optional
        Text file with more images, one per line (needs ``out_dir``).
    write : str or sequence of str
        With ``out_dir``: the files per image, from :data:`OUT_DIR_KINDS`.
    config, overrides, options :
        YAML file, ``key=value`` overrides and command-line flags of the :class:`InferConfig`.
    beam : str, optional
        ``BMAJ[,BMIN,BPA]`` (arcsec, arcsec, deg) for images without a restoring beam.
    on_image : callable, optional
        Called with each :class:`ImageOutcome` as soon as the image is done (root rank only).
    progress : bool
        Show a progress bar over the images (stderr).

    Returns
    -------
    list of ImageOutcome
        One per image (root rank); empty on other ranks.
    """
    cfg = infer_config(config, overrides, **(options or {}))
    images = [str(p) for p in images]
    if image_list is not None:
        if out_dir is None:
            raise ConfigError("--list: runs many images; give --out-dir DIR for their outputs")
        images += read_image_list(image_list)
    if out_dir is None:
        _check_single(images, (regions, catalog, json_path, plot))
    else:
        named = [f"--{k}" for k, v in (("regions", regions), ("catalog", catalog),
                                       ("json", json_path), ("plot", plot)) if v is not None]
        if named:
            raise ConfigError(f"{named[0]}: names one file; with --out-dir the files are "
                              "named after each image (choose them with --write)")
        if not images:
            raise ConfigError("infer: no image given; name FITS images or --list FILE")
        kinds = parse_kinds(write)
    beam_value = _parse_beam(beam)
    if out_dir is None:
        # fail at once, not after the slow start-up (TensorFlow, Horovod, the detector)
        check_outputs({"regions": regions, "catalog": catalog, "json": json_path, "plot": plot},
                      inputs=(images[0], weights))
        _check_readable(images[0], plane, hdu)
    from ssl_backbones.distributed import init

    ctx = init(use_horovod=horovod)
    root = ctx is None or ctx.is_root
    if out_dir is None:
        result = infer_image(images[0], weights=weights, config=cfg, regions=regions,
                             catalog=catalog, json_path=json_path, plot=plot, plane=plane,
                             hdu=hdu, ctx=ctx, beam=beam_value)
        outcomes = [ImageOutcome(images[0], result=result)] if root else []
        if on_image is not None and outcomes:
            on_image(outcomes[0])
        return outcomes
    runs = infer_images(images, out_dir, kinds=kinds, weights=weights, config=cfg, plane=plane,
                        hdu=hdu, beam=beam_value, ctx=ctx)
    outcomes = _follow(runs, len(images), on_image if root else None, progress and root)
    return outcomes if root else []


def _check_single(images: Sequence[str], outputs: Sequence[str | os.PathLike | None]) -> None:
    """One image needs one image name and at least one output of any kind."""
    if len(images) != 1:
        raise ConfigError(f"infer: {len(images) or 'no'} images given; name one image with "
                          "its outputs (--regions, --catalog, --json, --plot), or several "
                          "with --out-dir DIR")
    if all(p is None for p in outputs):
        raise ConfigError("infer: no output requested; give at least one of --regions FILE.reg, "
                          "--catalog FILE.fits, --json FILE.json, --plot FILE.png (or "
                          "--out-dir DIR)")


def _check_readable(image: str, plane: int | None, hdu: int | str | None) -> None:
    """Open the image once, before the slow start-up, so that a bad file fails at once.

    Its warnings are dropped here: the run opens the image again and reports them once, if
    it goes on."""
    from caesar_mrcnn.io.fits import open_image

    held = HeldWarnings()
    with held:
        with open_image(image, plane=plane, hdu=hdu):
            pass
        held.discard()


def _parse_beam(text: str | None) -> Any:
    """``--beam`` text -> the beam object the FITS reader takes (None when not given)."""
    if text is None:
        return None
    from caesar_mrcnn.io.beam import parse_beam

    return parse_beam(text)


def _follow(runs: Iterator[ImageOutcome], total: int,
            on_image: Callable[[ImageOutcome], None] | None, progress: bool
            ) -> list[ImageOutcome]:
    """Drain ``runs`` under a progress bar, handing each outcome to ``on_image``."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    outcomes = []
    with tqdm(total=total, desc="infer", unit="image", disable=not progress,
              dynamic_ncols=True) as bar, logging_redirect_tqdm():
        for outcome in runs:
            if on_image is not None:
                on_image(outcome)
            outcomes.append(outcome)
            bar.update(1)
    return outcomes
