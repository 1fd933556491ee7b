"""Source finding on a whole image: tiles, batched model, merge, source parameters, outputs.

:func:`infer_image` streams square tiles from the memory-mapped FITS file (never the whole
image at once), skips tiles without a finite pixel, preprocesses each tile exactly as training
preprocessed its images, runs the detector on batches, merges detections across tile borders
(:mod:`caesar_mrcnn.detection.merge`), measures each source
(:mod:`caesar_mrcnn.measure.sources`) and writes the
DS9 region file, catalogue, JSON and PNG requested. All outputs are atomic.

The detector itself (model, preprocessing, metadata) is a
:class:`~caesar_mrcnn.detection.detector.Detector`.

Preprocessing choice
--------------------
Training preprocesses each training image whole and crops windows from it; a tile of a mosaic
is preprocessed on its own (same function, same settings). For training images no larger than
the tile this is identical; for large mosaics the clipping statistics become local, which also
follows background and noise variations across the field. Tiles smaller than the network input
(image edges of small images) are padded with zeros after preprocessing, as in training.

Parallel runs
-------------
With a distributed context (``ssl_backbones.distributed``) each rank takes a contiguous share
of the tiles; detections are gathered as Python objects and rank 0 merges, measures and writes.
The merge orders detections by tile index, so the result does not depend on the number of ranks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from caesar_mrcnn import __version__
from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.data.resample import native_beam_pix
from caesar_mrcnn.detection.dedup import deduplicate
from caesar_mrcnn.detection.detector import (
    Detector,
    ModelPredictor,
    Predictor,
    Preprocess,
    finite_to_channels,
    load_detector,
)
from caesar_mrcnn.detection.merge import merge_detections
from caesar_mrcnn.detection.signal_tiles import tiles_with_signal
from caesar_mrcnn.detection.tile_input import TileInput
from caesar_mrcnn.detection.tiling import Tile, detections_from_output, tile_grid
from caesar_mrcnn.errors import AllNaNError, ConfigError, OutputError
from caesar_mrcnn.io.output_lock import output_lock
from caesar_mrcnn.logs import HeldWarnings
from caesar_mrcnn.measure.background import background_grid
from ssl_backbones.radio_input import resample_factor

log = logging.getLogger(__name__)


@dataclass
class InferConfig:
    """Options of :func:`infer_image`.

    Attributes
    ----------
    tile : int or None
        Tile side at the network's sampling (pixels); None: the detector's input size (256
        without a detector), or one tile of up to twice that for an image that fits in it
        (a cutout is then one model call instead of a grid of overlapping ones).
    overlap : int or None
        Minimum overlap of neighbouring tiles (pixels); sources smaller than this are whole in
        at least one tile. None: a quarter of the tile.
    batch_size : int
        Tiles per model call.
    score_thr : float
        Minimum objectness (``1 - p(background)``): an object is kept when the network is
        this sure that a source of any class is there; its class is the most probable one
        and the catalogue's ``p_<class>`` columns give all the class probabilities.
    mask_thr : float
        Mask probability above which a pixel belongs to a source.
    match_iou : float
        Mask IoU, inside the window shared by two tiles, above which two detections are the
        same source.
    bkg_box : int
        Cell side (native pixels) of the background and rms maps, computed once per image: the
        network's input is the image in units of these maps, and the measurements use them.
    min_snr : float
        Minimum seed SNR of a catalogue entry (its brightest pixel over the local rms,
        ``snr_pix``), like a classical finder's seed threshold; recorded in the catalogue
        header (``MINSNR``). 0 keeps everything.
    dedup_overlap : float
        After the merge, of two objects whose masks share this fraction of the smaller one's
        pixels only the larger (then the higher-scoring) stays, whatever their classes: one
        entry per source. 1 turns it off.
    name_prefix : str
        Catalogue acronym before the IAU names (empty: names start with ``J``).
    fit_compact : bool
        Fit compact sources with elliptical Gaussians for their flux densities and shapes
        (see :mod:`caesar_mrcnn.measure.sources`); False keeps the mask sums, a little faster.
    skip_empty : bool
        Run the network only on the tiles where a source of peak SNR ``min_snr`` or more can
        lie (:mod:`caesar_mrcnn.detection.signal_tiles`): the same catalogue as the full pass,
        without the model calls on pure noise. False runs every tile; recorded in the
        catalogue header (``SKIPEMPT``, with the tiles run ``NTILES`` of ``NTILEALL``).
    islands : bool
        Add, as entries flagged ``flag_island``, the islands of pixels above 3σ with a seed of
        ``min_snr`` that no network entry covers (:mod:`caesar_mrcnn.detection.islands`): a
        significant source is never left out because the network's objectness stayed under
        ``score_thr``. Their number is recorded in the catalogue header (``NISLANDS``).
    """

    tile: int | None = None
    overlap: int | None = None
    batch_size: int = 4
    score_thr: float = 0.5
    mask_thr: float = 0.5
    match_iou: float = 0.3
    bkg_box: int = 64
    min_snr: float = 5.0
    dedup_overlap: float = 0.5
    name_prefix: str = ""
    fit_compact: bool = True
    skip_empty: bool = True
    islands: bool = True

    def validate(self) -> None:
        if self.tile is not None and self.tile < 16:
            raise ConfigError(f"tile: {self.tile} is too small; use at least 16 pixels")
        if self.overlap is not None and self.overlap < 0:
            raise ConfigError(f"overlap: {self.overlap} must be >= 0 pixels")
        if self.overlap is not None and self.overlap >= (self.tile or 256):
            raise ConfigError(f"overlap: {self.overlap} must be smaller than the tile "
                              f"({self.tile or 256} pixels); lower --overlap or raise --tile")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size: {self.batch_size} must be at least 1")
        if self.min_snr < 0:
            raise ConfigError(f"min_snr: {self.min_snr} must be >= 0 (0 keeps every entry)")
        for key in ("score_thr", "mask_thr", "match_iou", "dedup_overlap"):
            value = getattr(self, key)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{key}: {value} must be between 0 and 1")
        if self.bkg_box < 8:
            raise ConfigError(f"bkg_box: {self.bkg_box} is too small; use at least 8 pixels")


@dataclass
class InferResult:
    """What :func:`infer_image` found (on the root rank).

    Attributes
    ----------
    objects : list of Annotation
        Merged objects in image pixels (``attrs``: ``score``, ``merged``, ``name`` ...).
    table : astropy.table.Table
        Source parameters, one row per object, same order.
    ntiles : int
        Tiles with at least one finite pixel that went through the model.
    outputs : dict
        Paths written, by kind (``regions``, ``catalog``, ``json``, ``plot``).
    components : astropy.table.Table
        The component table of ``table`` (one row per fitted Gaussian or mask island;
        ``source_index`` is the row in ``table``); an empty one when not given.
    """

    objects: list[Annotation]
    table: Any
    ntiles: int
    outputs: dict[str, str] = field(default_factory=dict)
    components: Any = None

    def __post_init__(self) -> None:
        if self.components is None:
            from caesar_mrcnn.measure.schema import component_table

            self.components = component_table()


# --- predictors -------------------------------------------------------------------------------


# --- tiles through the model --------------------------------------------------------------


def _run_batch(predict: Predictor, tiles: list[Tile], pixels: list[np.ndarray],
               tile_input: TileInput, size: int, shape: tuple[int, int],
               cfg: InferConfig) -> list[Annotation]:
    inputs = [tile_input.channels(t, data) for t, data in zip(tiles, pixels)]
    batch = np.zeros((len(tiles), size, size, inputs[0].shape[2]), dtype=np.float32)
    for i, img in enumerate(inputs):
        h, w = min(img.shape[0], size), min(img.shape[1], size)
        batch[i, :h, :w] = img[:h, :w]
    windows = np.array([t.window for t in tiles], dtype=np.int64)
    out = predict(batch, windows)
    dets = []
    for i, (t, data) in enumerate(zip(tiles, pixels)):
        # one tile's output, its masks brought back to the native pixels
        keep = np.asarray(out["scores"][i]) >= cfg.score_thr
        tile_out = {k: np.asarray(v[i])[keep][None] for k, v in out.items() if k != "masks"}
        tile_out["masks"] = tile_input.native_masks(np.asarray(out["masks"][i])[keep], t)[None]
        dets += detections_from_output(tile_out, 0, t, shape, np.isfinite(data), cfg.score_thr,
                                       cfg.mask_thr)
    return dets


def detect_tiles(image: Any, shape: tuple[int, int], tiles: Sequence[Tile], predict: Predictor,
                 tile_input: TileInput | Preprocess, cfg: InferConfig
                 ) -> tuple[list[Annotation], int]:
    """Run the predictor over ``tiles`` in batches, reading each tile when its batch runs.

    Parameters
    ----------
    tile_input : TileInput or callable
        How native tile pixels become network input (a plain preprocessing callable runs at
        the native sampling without noise maps).

    Returns
    -------
    detections : list of Annotation
        Per-tile detections in image pixels (see :func:`detections_from_output`).
    ntiles : int
        Tiles that held a finite pixel (all-NaN tiles are skipped).
    """
    from caesar_mrcnn.io.windows import read_window

    if not isinstance(tile_input, TileInput):
        tile_input = TileInput(tile_input)
    size = cfg.tile
    dets: list[Annotation] = []
    pending: list[Tile] = []
    pixels: list[np.ndarray] = []
    used = 0
    for t in tiles:
        data = read_window(image, t.y0, t.y1, t.x0, t.x1)
        if not np.isfinite(data).any():
            continue
        used += 1
        pending.append(t)
        pixels.append(data)
        if len(pending) == cfg.batch_size:
            dets += _run_batch(predict, pending, pixels, tile_input, size, shape, cfg)
            pending, pixels = [], []
    if pending:
        dets += _run_batch(predict, pending, pixels, tile_input, size, shape, cfg)
    return dets, used


# --- the whole run ---------------------------------------------------------------------------


PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")
"""File name extensions ``--plot`` accepts (the format follows the extension)."""


def check_outputs(paths: dict[str, str | os.PathLike | None],
                  inputs: Sequence[str | os.PathLike | None] = ()) -> None:
    """Fail before any work when an output cannot be written.

    Checks the folder, the catalogue extension, that no output (the component table beside a
    VOTable, CSV or ECSV catalogue included) is a folder or overwrites an input (image,
    weights), and that no two outputs share a file.
    """
    from caesar_mrcnn.io.catalog import catalog_format, components_path

    taken = {Path(p).resolve(): "input" for p in inputs if p is not None}
    paths = dict(paths)
    if paths.get("catalog") is not None:
        catalog_format(paths["catalog"])
        sibling = components_path(paths["catalog"])
        if sibling != Path(paths["catalog"]):
            paths["component table"] = sibling
    for kind, p in paths.items():
        if p is None:
            continue
        folder = Path(p).parent
        if not folder.is_dir():
            raise OutputError(f"{p}: output folder {folder} does not exist; create it first")
        if Path(p).is_dir():
            raise OutputError(f"{p}: is a folder; give a file name for the {kind} output")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"{p}: output folder {folder} is not writable; choose another")
        resolved = Path(p).resolve()
        if resolved in taken:
            raise OutputError(f"{p}: the {kind} output would overwrite the {taken[resolved]} "
                              "file; give a different name")
        taken[resolved] = f"{kind} output"
        if kind == "catalog":
            catalog_format(p)
        if kind == "plot" and Path(p).suffix.lower() not in PLOT_SUFFIXES:
            raise OutputError(f"{p}: unknown plot format; name the file with one of "
                              f"{', '.join(PLOT_SUFFIXES)}")


def infer_image(image_path: str | os.PathLike, *, weights: str | os.PathLike | None = None,
                detector: Detector | None = None, predictor: Predictor | None = None,
                preprocess: Preprocess | None = None,
                config: InferConfig | None = None, regions: str | os.PathLike | None = None,
                catalog: str | os.PathLike | None = None,
                json_path: str | os.PathLike | None = None,
                plot: str | os.PathLike | None = None, plane: int | None = None,
                hdu: int | str | None = None, ctx: Any = None,
                metadata: dict | None = None, beam: Any = None) -> InferResult | None:
    """Find, classify and measure the sources of a FITS image; write the requested outputs.

    Parameters
    ----------
    image_path : path-like
        FITS image (2D, or a cube with ``plane``).
    weights : path-like, optional
        Detector file written by training; used when ``predictor`` and ``detector`` are None
        (the shipped reference detector when all three are None).
    detector : Detector, optional
        A detector already loaded with :func:`load_detector` (to run on many images).
    predictor : callable, optional
        ``predict(batch, windows) -> dict`` (see the module docstring); overrides ``weights``.
    preprocess : callable, optional
        ``(H, W)`` float with NaN -> ``(H, W, C)`` float32; default the detector's own, or
        NaN -> 0 with a given ``predictor``.
    config : InferConfig, optional
        Tiling, thresholds, merging.
    regions, catalog, json_path, plot : path-like, optional
        Outputs: DS9 regions, catalogue (format by extension), JSON, PNG.
    plane, hdu : optional
        Cube plane and HDU of the image.
    ctx : ssl_backbones.distributed.Context, optional
        Distributed context; default one process.
    metadata : dict, optional
        Extra run metadata for the catalogue header.
    beam : caesar_mrcnn.io.fits.Beam, optional
        Restoring beam that wins over the file's (``--beam``); the catalogue header records
        where the beam came from (``BEAMSRC``).

    Returns
    -------
    InferResult or None
        On the root rank; None on the other ranks.

    Raises
    ------
    InputImageError
        Unreadable image, or AllNaNError when no pixel is finite.
    WeightsError
        Missing or unusable weights.
    OutputError
        An output that cannot be written (missing folder, unknown catalogue extension).
    """
    cfg = config or InferConfig()
    cfg.validate()
    outputs = {"regions": regions, "catalog": catalog, "json": json_path, "plot": plot}
    check_outputs(outputs, inputs=(image_path, weights, detector.path if detector else None))
    from caesar_mrcnn.io.fits import open_image

    run_meta: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        # warnings about the image and the detector wait until the run is known to go on: a
        # run that cannot (no finite pixel, no usable weights) prints its one error line only
        with HeldWarnings():
            image = stack.enter_context(open_image(image_path, plane=plane, hdu=hdu, beam=beam))
            predictor, preprocess, cfg = _model_for_run(cfg, weights, detector, predictor,
                                                        preprocess, run_meta)
            shape = image.shape
            background = background_grid(image, shape, box=cfg.bkg_box)
            if not np.isfinite(background.rms).any():
                raise AllNaNError(f"{image_path}: every pixel is NaN or infinite; nothing to "
                                  "analyse")
        tile_input = _tile_input(image, image_path, preprocess, background)
        run_meta["ZOOM"] = round(tile_input.zoom, 4)
        if config is None or config.tile is None:
            cfg = _whole_image_tile(cfg, max(tile_input.network_shape(
                Tile(0, 0, 0, shape[0], shape[1]))))
        # tiles cover the native image; at the network's sampling each is cfg.tile pixels
        native_tile = max(16, int(cfg.tile / tile_input.zoom + 1e-6))
        native_overlap = min(int(round(cfg.overlap / tile_input.zoom)), native_tile - 1)
        tiles = tile_grid(shape, native_tile, native_overlap)
        run = tiles_with_signal(image, shape, tiles, background, cfg.min_snr,
                                tile_input.zoom) if cfg.skip_empty else tiles
        mine = run[ctx.shard(len(run))] if ctx is not None else run
        dets, used = detect_tiles(image, shape, mine, predictor, tile_input, cfg)
        if ctx is not None and ctx.size > 1:
            gathered = ctx.allgather_object((dets, used))
            dets = [d for part, _ in gathered for d in part]
            used = sum(n for _, n in gathered)
        if used == 0 and len(run) == len(tiles):  # no tile held signal: an empty catalogue
            raise AllNaNError(f"{image_path}: every pixel is NaN or infinite; nothing to "
                              "analyse")
        if ctx is not None and not ctx.is_root:
            return None
        log.info("%s: %d of %d tiles, %d detections before merging", image_path, used,
                 len(tiles), len(dets))
        run_meta.update(SKIPEMPT=cfg.skip_empty, NTILES=used, NTILEALL=len(tiles))
        objects = merge_detections(dets, tiles, cfg.match_iou)
        if cfg.dedup_overlap < 1.0:
            objects = deduplicate(objects, cfg.dedup_overlap, _peak_pixels(objects, image))
        if cfg.islands:
            objects = _with_islands(objects, image, shape, background, cfg)
            run_meta["NISLANDS"] = sum(o.attrs.get("origin") == "island" for o in objects)
        run_meta.update(_run_metadata(image, image_path, cfg))
        run_meta.update(metadata or {})
        objects, table, components = _measure(objects, image, shape, cfg, run_meta,
                                              background)
        # one writer at a time for the whole set: two runs writing the same paths leave one
        # run's complete set, never a mix
        with output_lock(outputs.values()):
            written = _write_outputs(outputs, objects, table, image, shape, run_meta,
                                     components)
    log.info("%s: %d sources", image_path, len(objects))
    return InferResult(objects, table, used, written, components)


def _peak_pixels(objects: Sequence[Annotation], image: Any) -> list[tuple[int, int] | None]:
    """Image pixel (row, column) of each object's brightest finite mask pixel (None without
    one)."""
    from caesar_mrcnn.io.windows import read_window

    out: list[tuple[int, int] | None] = []
    for obj in objects:
        y0, x0, y1, x1 = obj.bbox
        vals = np.where(obj.mask, read_window(image, y0, y1, x0, x1), np.nan)
        if not np.isfinite(vals).any():
            out.append(None)
            continue
        r, c = np.unravel_index(np.nanargmax(vals), vals.shape)
        out.append((y0 + int(r), x0 + int(c)))
    return out


def _with_islands(objects: list[Annotation], image: Any, shape: tuple[int, int],
                  background: Any, cfg: InferConfig) -> list[Annotation]:
    """``objects`` completed by the islands above ``cfg.min_snr`` that none of the entries
    kept in the catalogue covers (an entry under ``min_snr`` is dropped later, so it covers
    nothing), and by the parts of covered islands farther than ``JOIN_GAP_BEAMS`` beams from
    every kept mask: joined to the extended entry whose mask touches their island, whose box
    holds them or whose mask lies within ``JOIN_GAP_BEAMS`` beams, else entries of their
    own."""
    from caesar_mrcnn.detection.islands import (
        JOIN_GAP_BEAMS,
        attach_islands,
        seed_significance,
        uncovered_islands,
    )
    from caesar_mrcnn.measure.sources import beam_fwhm_pix

    if cfg.min_snr <= 0:  # every entry is kept and no seed threshold defines an island
        return objects
    kept = seed_significance(objects, image, background) >= cfg.min_snr
    beam = image.beam_area_pix
    gap = JOIN_GAP_BEAMS * beam_fwhm_pix(beam) if beam else 0.0
    kept_at = np.flatnonzero(kept)
    found = uncovered_islands(image, shape, background, [objects[i] for i in kept_at],
                              cfg.min_snr, beam, reach_pix=gap)
    for isl in found:  # indices among the kept entries -> among all of them
        if "island_of" in isl.attrs:
            isl.attrs["island_of"] = [int(kept_at[i]) for i in isl.attrs["island_of"]]
    objects, rest = attach_islands(objects, found, gap_pix=gap)
    log.info("%d islands above min_snr=%g that no network entry covers: %d joined to an "
             "extended entry, %d new entries", len(found), cfg.min_snr,
             len(found) - len(rest), len(rest))
    return objects + rest


def _run_metadata(image: Any, image_path: str | os.PathLike, cfg: InferConfig) -> dict:
    bunit = getattr(image, "bunit", "")
    if bunit and bunit.replace(" ", "").upper() not in ("JY/BEAM", "JY/BM"):
        log.warning("%s: BUNIT is %r, not Jy/beam; fluxes are in that unit instead",
                    image_path, bunit)
    return {"IMAGE": str(Path(image_path).name), "BUNIT": bunit, "SCORETHR": cfg.score_thr,
            "MASKTHR": cfg.mask_thr, "TILE": cfg.tile, "OVERLAP": cfg.overlap,
            "BEAMSRC": str(getattr(image, "beam_source", "header")),
            "SOFTWARE": "caesar-mrcnn", "VERSION": __version__}


def _model_for_run(cfg: InferConfig, weights, detector: Detector | None,
                   predictor: Predictor | None, preprocess: Preprocess | None,
                   run_meta: dict) -> tuple[Predictor, Preprocess, InferConfig]:
    """The predictor and preprocessing of a run, and its configuration with the tile size and
    overlap settled (the detector's input size unless given)."""
    if predictor is None:
        detector = detector or load_detector(weights)
        predictor = detector.predictor
        if isinstance(predictor, ModelPredictor):
            # masks only for what score_thr keeps: most slots of a tile are below it
            predictor = predictor.keeping(cfg.score_thr)
        preprocess = preprocess or detector.preprocess
        run_meta["WEIGHTS"] = detector.path.name
        run_meta["BACKBONE"] = str(detector.metadata.get("backbone", {}).get("name", ""))
        size = detector.image_size
        if cfg.tile is not None and cfg.tile != size:
            log.warning("tile %d differs from the detector's input size %d", cfg.tile, size)
        cfg = dataclasses.replace(cfg, tile=cfg.tile or size)
    else:
        run_meta["WEIGHTS"] = Path(weights).name if weights else "(predictor)"
    cfg = dataclasses.replace(cfg, tile=cfg.tile or 256)
    if cfg.overlap is None:
        cfg = dataclasses.replace(cfg, overlap=cfg.tile // 4)
    cfg.validate()
    return predictor, preprocess or finite_to_channels, cfg


def _whole_image_tile(cfg: InferConfig, extent: int) -> InferConfig:
    """One tile for an image whose larger side (at the network's sampling) is at most twice
    the tile: overlapping tiles would each cost a model call on mostly the same pixels."""
    if cfg.tile < extent <= 2 * cfg.tile:
        tile = -(-extent // 32) * 32  # the network's input is a multiple of its C5 stride
        cfg = dataclasses.replace(cfg, tile=tile, overlap=min(cfg.overlap, tile - 1))
    return cfg


def _tile_input(image: Any, image_path: str | os.PathLike, preprocess: Preprocess,
                background: Any) -> TileInput:
    """The tile input of a run: the image's noise maps, and the zoom to the detector's beam
    sampling (1 without a noise-aware detector, or without a beam, with a warning)."""
    config = getattr(preprocess, "config", None)
    target = float(getattr(config, "beam_pix", 0.0)) if getattr(config, "kind", "") == "snr" \
        else 0.0
    zoom = 1.0
    if target:
        native = native_beam_pix(image)
        if native is None:
            log.warning("%s: no restoring beam in the header; detecting at the native sampling "
                        "(pass --beam BMAJ[,BMIN,BPA] in arcsec for the detector's %.3g pixels "
                        "per beam)", image_path, target)
        zoom = resample_factor(native, target)
    return TileInput(preprocess, zoom, background)


def _measure(objects: list[Annotation], image: Any, shape: tuple[int, int], cfg: InferConfig,
             meta: dict, background: Any) -> tuple[list[Annotation], Any, Any]:
    """Source parameters of ``objects``; entries below ``cfg.min_snr`` are dropped.

    Returns the kept objects, their source table and the component table of the kept entries
    (``source_index`` renumbered to the kept rows).
    """
    from caesar_mrcnn.measure.sources import measure_catalogs

    table, components = measure_catalogs(objects, image, shape, wcs=image.wcs,
                                         beam_area_pix=image.beam_area_pix,
                                         background=background, name_prefix=cfg.name_prefix,
                                         fit_compact=cfg.fit_compact, meta=meta)
    table.meta["MINSNR"] = components.meta["MINSNR"] = cfg.min_snr
    if cfg.min_snr > 0 and len(table):
        # the seed significance, as classical finders apply it: the fitted peak of a faint
        # source reads below its brightest pixel and would drop sources they keep
        keep = np.asarray(table["snr_pix"], dtype=np.float64) >= cfg.min_snr
        log.info("%d of %d entries below min_snr=%g dropped", int((~keep).sum()), len(keep),
                 cfg.min_snr)
        objects = [o for o, k in zip(objects, keep) if k]
        table = table[keep]
        # components of the dropped entries go with them; the others point at their new rows
        index = np.asarray(components["source_index"], dtype=np.int64)
        components = components[keep[index]]
        components["source_index"][:] = (np.cumsum(keep) - 1)[index[keep[index]]]
    table["n_components"][:] = np.bincount(np.asarray(components["source_index"], np.int64),
                                           minlength=len(table))
    for ann, name in zip(objects, table["name"]):
        ann.attrs["name"] = str(name)
    table.meta["NSOURCES"] = len(table)
    components.meta["NCOMPS"] = len(components)
    return objects, table, components


def _write_outputs(outputs: dict, objects: list[Annotation], table: Any, image: Any,
                   shape: tuple[int, int], meta: dict, components: Any = None
                   ) -> dict[str, str]:
    """Write the requested outputs; the catalogue and the JSON carry the component table
    ``components``."""
    written = {}
    if outputs["regions"] is not None:
        from caesar_mrcnn.io.regions import write_regions

        write_regions(outputs["regions"], objects, list(table["name"]), image.wcs)
        written["regions"] = str(outputs["regions"])
    if outputs["catalog"] is not None:
        from caesar_mrcnn.io.catalog import write_catalog

        write_catalog(table, outputs["catalog"], components=components)
        written["catalog"] = str(outputs["catalog"])
    if outputs["json"] is not None:
        from caesar_mrcnn.io.catalog import write_catalog_json

        write_catalog_json(table, outputs["json"], objects, components=components)
        written["json"] = str(outputs["json"])
    if outputs["plot"] is not None:
        from caesar_mrcnn.io.plot import plot_detections

        plot_detections(outputs["plot"], image, shape, objects, image.wcs,
                        title=f"{meta.get('IMAGE', '')}: {len(objects)} sources")
        written["plot"] = str(outputs["plot"])
    return written

