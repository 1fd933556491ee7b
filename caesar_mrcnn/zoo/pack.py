"""Packing model files for shipping (a maintainers' tool): ``python -m caesar_mrcnn.zoo.pack``.

``backbone`` writes a float16 copy of a registry backbone entry; ``detector`` writes the compact
form (:mod:`caesar_mrcnn.detection.compact`) of a detector trained on a frozen backbone;
``from-checkpoint`` writes the detector file of a training run cut short; ``sizes`` lists what a
folder of model files weighs. Only this module of the package imports both the training code
and the file formats; inference never imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from caesar_mrcnn.detection.compact import compact_backbone, pack_detector
from caesar_mrcnn.errors import ConfigError, WeightsError
from caesar_mrcnn.zoo.lookup import DEFAULT_BACKBONE, file_sizes


def detector_from_checkpoint(run: str | Path, out: str | Path,
                             step: int | None = None) -> Path:
    """Detector file from a checkpoint of a training run that stopped before its last step.

    ``caesar-mrcnn train`` writes ``detector.npz`` only at the end of its schedule; a run cut
    short (a time limit, ``train(..., stop_at=N)``) leaves checkpoints. This writes the detector
    file of one of them, with the run's configuration, backbone metadata and provenance.

    Parameters
    ----------
    run : path-like
        The training output folder (``train_config.yaml``, ``checkpoints/``).
    out : path-like
        Detector file to write.
    step : int, optional
        Checkpoint step (default: the latest).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    WeightsError
        No such checkpoint, or one that does not fit the run's model.
    """
    from caesar_mrcnn.detection.detector_file import save_detector
    from caesar_mrcnn.modeling.maskrcnn import MaskRCNN
    from caesar_mrcnn.training.backbone import resolve_backbone_spec
    from caesar_mrcnn.training.checkpoint import list_checkpoints, read_checkpoint
    from caesar_mrcnn.training.loop import load_train_config

    run = Path(run)
    found = dict(list_checkpoints(run / "checkpoints"))
    if not found or (step is not None and step not in found):
        raise WeightsError(f"{run}: no checkpoint {step if step is not None else ''} in "
                           f"{run / 'checkpoints'}; steps there: {sorted(found) or 'none'}")
    step = max(found) if step is None else step
    cfg = load_train_config(run / "train_config.yaml")
    info, arrays, _ = read_checkpoint(found[step])
    model = MaskRCNN(cfg.model)
    if len(model.variables) != len(arrays):
        raise WeightsError(f"{found[step]}: holds {len(arrays)} model variables but the run's "
                           f"model has {len(model.variables)}")
    for var, arr in zip(model.variables, arrays):
        var.assign(arr)
    _weights, backbone = resolve_backbone_spec(cfg.backbone.name)
    backbone = {k: v for k, v in backbone.items() if k != "path"}
    extra = {"train": {"steps": step, "schedule_steps": cfg.steps, "data": cfg.data.train,
                       "seed": cfg.seed, "world_size": 1}}
    # The weights come from the training run, so the file records that run's provenance (None
    # for checkpoints written before it was recorded), not this command's.
    return save_detector(model, cfg, out, backbone={**backbone, "name": cfg.backbone.name},
                         extra=extra, provenance=info.get("meta", {}).get("provenance"))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m caesar_mrcnn.zoo.pack``: pack model files for shipping (maintainers' tool).

    ``backbone SRC.npz OUT_DIR`` writes a float16 registry entry; ``detector DETECTOR.npz
    OUT.npz --backbone ENTRY.npz`` writes a compact detector; ``from-checkpoint RUN OUT.npz``
    writes the detector of a run's latest checkpoint; ``sizes [DIR]`` lists file sizes.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m caesar_mrcnn.zoo.pack",
                                     description="Pack model files for shipping.")
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("backbone", help="float16 copy of a registry backbone entry")
    p.add_argument("source", help="backbone .npz (its .json beside it)")
    p.add_argument("out_dir", help="destination folder")
    p.add_argument("--name", default=None, help="entry name (default: the source's)")
    p = sub.add_parser("detector", help="compact form of a detector trained on a backbone")
    p.add_argument("detector", help="detector .npz written by caesar-mrcnn train")
    p.add_argument("out", help="compact detector .npz to write")
    p.add_argument("--backbone", required=True, help="backbone .npz it was trained from")
    p.add_argument("--name", default=DEFAULT_BACKBONE, help="backbone name stored in the file")
    p = sub.add_parser("from-checkpoint", help="detector file from a training checkpoint")
    p.add_argument("run", help="training output folder")
    p.add_argument("out", help="detector .npz to write")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    p = sub.add_parser("sizes", help="sizes of the model files in a folder")
    p.add_argument("folder", nargs="?", default=None, help="default: the shipped folder")
    args = parser.parse_args(argv)
    from ssl_backbones.errors import BackboneError

    try:
        if args.what == "backbone":
            print(compact_backbone(args.source, args.out_dir, args.name))
        elif args.what == "detector":
            print(pack_detector(args.detector, args.out, args.backbone, args.name))
        elif args.what == "from-checkpoint":
            print(detector_from_checkpoint(args.run, args.out, args.step))
        else:
            sizes = file_sizes(args.folder)
            for name, size in sizes.items():
                print(f"{size / 2**20:8.2f} MiB  {name}")
            print(f"{sum(sizes.values()) / 2**20:8.2f} MiB  total")
    except (WeightsError, ConfigError, BackboneError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
