"""The ``caesar-mrcnn`` command: parse arguments, call library functions, report errors.

No logic lives here. Each subcommand has an ``_add_<name>`` function that declares its
arguments and a ``_run_<name>`` function that imports the library lazily (TensorFlow takes
seconds to import; ``caesar-mrcnn --help`` should not) and calls it. A :class:`CaesarError`
becomes one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Sequence

from caesar_mrcnn import __version__
from caesar_mrcnn.errors import CaesarError, ConfigError
from caesar_mrcnn.logs import configure_logging
from caesar_mrcnn.signals import sigterm_as_interrupt
from ssl_backbones.errors import BackboneError

PROG = "caesar-mrcnn"


def _add_common_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="YAML", help="configuration file (YAML)")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="override a configuration option, e.g. --set train.lr=0.01 (repeatable)")


def _add_own_options_config(p: argparse.ArgumentParser) -> None:
    """--config/--set of a command without a library configuration: they set its options."""
    p.add_argument("--config", metavar="YAML",
                   help="YAML file of this command's options (keys: the option names with "
                        "underscores, e.g. registry); flags given here win")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="set one option, e.g. --set folds=10 (repeatable)")
    p.set_defaults(own_options=True)


def _with_own_options(parser: argparse.ArgumentParser, args: argparse.Namespace,
                      argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse again with the values of --config/--set as the command's defaults, so that flags
    on the command line still win. Only for commands declared with
    :func:`_add_own_options_config`; required options and positionals stay on the command line.
    """
    if not getattr(args, "own_options", False) or not (args.config or args.overrides):
        return args
    from caesar_mrcnn.config import option_values

    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub = subparsers.choices[args.command]
    actions = [a for a in sub._actions if a.option_strings and not a.required
               and a.dest not in ("help", "config", "overrides")]
    specs = []
    for a in actions:
        if isinstance(a, argparse._StoreTrueAction | argparse._StoreFalseAction):
            tp = bool
        else:
            tp = {None: str, _hdu_arg: int | str}.get(a.type, a.type)
        if a.nargs not in (None, "?") or isinstance(a, argparse._AppendAction):
            tp = list[tp]
        specs.append((a.dest, tp | None if a.default is None else tp, a.default))
    values = option_values(args.command, specs, args.config, args.overrides)
    for a in actions:
        value = values[a.dest]
        if a.choices is not None and value is not None and value not in a.choices:
            raise ConfigError(f"{a.dest}: {value!r} is not one of "
                              f"{', '.join(map(str, a.choices))} (from --config/--set)")
    sub.set_defaults(**values)
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------------
# Subcommands. Each: _add_<name>(subparsers) and _run_<name>(args) -> int.
# ---------------------------------------------------------------------------------------------

def _hdu_arg(text: str) -> int | str:
    """An HDU given on the command line: an index (digits) or an EXTNAME."""
    return int(text) if text.lstrip("-").isdigit() else text


def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="summarise a FITS image (shape, WCS, beam, noise)",
                       description="Print shape, type, WCS, pixel scale, restoring beam, BUNIT, "
                                   "valid-pixel fraction and a sigma-clipped median and rms.")
    p.add_argument("image", metavar="IMAGE", help="FITS image")
    p.add_argument("--plane", type=int, default=None,
                   help="plane index along the frequency/Stokes axis of a cube")
    p.add_argument("--hdu", type=_hdu_arg, default=None,
                   help="HDU index or EXTNAME (default: first HDU holding an image)")
    p.add_argument("--beam", default=None, metavar="BMAJ[,BMIN,BPA]",
                   help="restoring beam (arcsec, arcsec, deg) when the header has none")
    _add_own_options_config(p)
    p.set_defaults(func=_run_inspect)


def _run_inspect(args) -> int:
    from caesar_mrcnn.io.beam import parse_beam
    from caesar_mrcnn.io.inspect import describe_image

    beam = parse_beam(args.beam) if args.beam is not None else None
    print(describe_image(args.image, plane=args.plane, hdu=args.hdu, beam=beam))
    return 0


def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="simulate labelled radio fields (FITS + COCO + caesar "
                                        "JSON + ground-truth table)",
                       description="Simulate radio continuum fields with compact, extended, "
                                   "multi-island sources and sidelobe artefacts, and write them "
                                   "with their ground truth into a new folder.")
    _add_common_config(p)
    p.add_argument("--out", required=True, metavar="DIR", help="new or empty output folder")
    p.add_argument("--n-images", type=int, default=None, metavar="N",
                   help="number of fields (default: n_images of the configuration)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: from config)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_simulate)


def _run_simulate(args) -> int:
    from caesar_mrcnn.sim.writer import simulate_command

    summary = simulate_command(args.config, args.overrides, args.out, n_images=args.n_images,
                               seed=args.seed, progress=not args.no_progress)
    print(summary.line())
    return 0


def _add_make_cutouts(sub) -> None:
    p = sub.add_parser("make-cutouts", help="cutouts for self-supervised pretraining, or a "
                                            "labelled morphology set",
                       description="Write a folder of same-size float32 FITS cutouts (+ CSV) "
                                   "from simulated fields or from your FITS images; with "
                                   "--morphology, a class-balanced labelled set.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", "--sim-config", dest="sim_config", metavar="YAML",
                     help="simulator configuration")
    src.add_argument("--from-fits", nargs="+", metavar="FITS", help="cut these images")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="override a simulator option, e.g. --set noise.rms_ujy=20")
    p.add_argument("--out", required=True, metavar="DIR", help="new or empty output folder")
    p.add_argument("--n", type=int, required=True, help="number of cutouts")
    p.add_argument("--size", type=int, default=64, help="cutout side in pixels (default 64)")
    p.add_argument("--centred", action="store_true", help="centre cutouts on sources")
    p.add_argument("--morphology", action="store_true",
                   help="labelled single-object cutouts (compact, FR-I, FR-II, diffuse, "
                        "multi-island, artefact), balanced per label")
    p.add_argument("--seed", type=int, default=None, help="random seed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_make_cutouts)


def _run_make_cutouts(args) -> int:
    from caesar_mrcnn.sim.cutouts import make_cutouts_command

    if args.overrides and args.from_fits and not args.morphology:
        raise ConfigError(f"--set {args.overrides[0]}: sets a simulator option, and cutouts "
                          "--from-fits use no simulator; drop it")

    summary = make_cutouts_command(args.out, args.n, args.size, sim_config=args.sim_config,
                                   overrides=args.overrides, fits_paths=args.from_fits,
                                   centred=args.centred, morphology=args.morphology,
                                   seed=args.seed, progress=not args.no_progress)
    print(summary.line())
    return 0


def _add_pretrain(sub) -> None:
    p = sub.add_parser("pretrain", help="pretrain a ResNet backbone without labels "
                       "(SimCLR/BYOL/DINO)",
                       description="Self-supervised pretraining on radio cutouts; exports the "
                                   "backbone weights and metadata into the backbone registry.")
    p.add_argument("--method", choices=("simclr", "byol", "dino"),
                   help="self-supervised method (default from the config, else byol)")
    p.add_argument("--arch", choices=("resnet18", "resnet50"),
                   help="backbone (default from the config, else resnet18)")
    p.add_argument("--data", nargs="+", default=[], metavar="DIR|FITS|MIRABEST",
                   help="folder(s) of same-size FITS cutouts and/or large FITS images to sample; "
                        "with data.input=snr3-v1 also MiraBest batches (folder or tarball); "
                        "default: the config's data.sources")
    p.add_argument("--epochs", type=int, help="training epochs (default from the config)")
    p.add_argument("--batch-size", type=int, help="batch size per rank (default from config)")
    _add_common_config(p)
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/pretrain/NAME)")
    p.add_argument("--name", help="registry name (default ssl_METHOD_r18|r50)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--probe-data", metavar="DIR",
                   help="labelled morphology folder: log kNN accuracy every epoch")
    p.add_argument("--registry", metavar="DIR",
                   help="backbone registry folder (default $CAESAR_MRCNN_BACKBONES or cache)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_pretrain)


def _run_pretrain(args) -> int:
    from ssl_backbones.pretrain import run_pretrain

    run_pretrain(args.method, args.arch, args.data, epochs=args.epochs,
                 batch_size=args.batch_size, config=args.config, overrides=args.overrides,
                 out=args.out, name=args.name, resume=args.resume, probe_data=args.probe_data,
                 registry=args.registry, progress=not args.no_progress)
    return 0


def _add_backbones(sub) -> None:
    p = sub.add_parser("backbones", help="list pretrained backbones in the registry")
    p.add_argument("--registry", metavar="DIR",
                   help="backbone registry folder (default $CAESAR_MRCNN_BACKBONES or cache)")
    _add_own_options_config(p)
    p.set_defaults(func=_run_backbones)


def _run_backbones(args) -> int:
    from caesar_mrcnn.zoo.lookup import backbone_search_dirs
    from ssl_backbones.registry import print_backbones

    print_backbones(search_dirs=backbone_search_dirs(), registry=args.registry)
    return 0


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="what a model file is and where it came from",
                       description="Print a model file's kind and provenance: git commit, "
                                   "command line, data digest, software versions.")
    p.add_argument("model", metavar="MODEL",
                   help="detector (full or compact), checkpoint or backbone .npz, a registered "
                        "backbone name, or reference_r18 (the shipped detector)")
    _add_own_options_config(p)
    p.set_defaults(func=_run_info)


def _run_info(args) -> int:
    from caesar_mrcnn.zoo.info import print_info

    print_info(args.model)
    return 0


def _add_ssl_eval(sub) -> None:
    p = sub.add_parser("ssl-eval", help="linear-probe, kNN and fine-tuned accuracy of a "
                                        "backbone beside its random-init twin",
                       description="On MiraBest (batches folder or tarball): the official "
                                   "split, linear probe, kNN and fine-tuning, accuracy with a "
                                   "Wilson interval and F1. On a labelled morphology folder: "
                                   "stratified k-fold linear probe and kNN.")
    p.add_argument("--backbone", required=True, metavar="NAME|PATH")
    p.add_argument("--data", required=True, metavar="MORPHO_DIR|MIRABEST",
                   help="folder of FITS cutouts with a labels CSV (file,label), or MiraBest "
                        "(F_batches folder or MiraBest_F_batches.tar.gz)")
    p.add_argument("--subset", choices=("confident", "full"), default="confident",
                   help="MiraBest subset (default confident)")
    p.add_argument("--protocol", choices=("official", "kfold"),
                   help="official train/test split (MiraBest default) or k-fold (on MiraBest: "
                        "its training images only)")
    p.add_argument("--protocols", default="linear,knn",
                   help="official split: comma-separated linear,knn,finetune (default "
                        "linear,knn)")
    p.add_argument("--finetune-epochs", type=int, default=15)
    p.add_argument("--finetune-subset-epochs", type=int, metavar="N",
                   help="epochs of the --finetune-labels runs (default --finetune-epochs)")
    p.add_argument("--finetune-labels", type=int, action="append", default=[], metavar="N",
                   help="also fine-tune on N stratified training labels (repeatable, e.g. 145)")
    p.add_argument("--size", type=int, help="network input side (default from the backbone)")
    p.add_argument("--no-twin", action="store_true",
                   help="skip the random-init twin of the backbone")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--k", type=int, default=20, help="neighbours of the kNN classifier")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="JSON", help="result file (default ssl_eval_NAME.json)")
    p.add_argument("--registry", metavar="DIR",
                   help="backbone registry folder (default $CAESAR_MRCNN_BACKBONES or cache)")
    _add_own_options_config(p)
    p.set_defaults(func=_run_ssl_eval)


def _run_ssl_eval(args) -> int:
    from caesar_mrcnn.zoo.lookup import backbone_search_dirs
    from ssl_backbones.evaluate import ssl_eval

    ssl_eval(args.backbone, args.data, folds=args.folds, seed=args.seed, k=args.k,
             out=args.out, search_dirs=backbone_search_dirs(), registry=args.registry,
             subset=args.subset,
             protocol=args.protocol, protocols=[p for p in args.protocols.split(",") if p],
             size=args.size, finetune_epochs=args.finetune_epochs,
             finetune_labels=args.finetune_labels, twin=not args.no_twin,
             finetune_subset_epochs=args.finetune_subset_epochs)
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score the detector on a labelled dataset "
                                        "(completeness, reliability, COCO AP, confusion)",
                       description="Run the trained detector on a labelled dataset or simulated "
                                   "fields, match detections to the truth one-to-one by mask IoU "
                                   "(or by position, --match position), and write report.json, "
                                   "CSV tables and PNG plots.")
    _add_common_config(p)
    p.add_argument("--data", required=True, metavar="PATH",
                   help="simulated-field folder, COCO JSON or caesar JSON list")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="trained detector weights (default: the shipped reference detector)")
    p.add_argument("--detections", default=None, metavar="FILE|DIR",
                   help="score what caesar-mrcnn infer --json wrote instead of detecting: its "
                        "JSON (one image) or a folder of <image stem>.json")
    p.add_argument("--out", required=True, metavar="DIR", help="report folder (created)")
    p.add_argument("--iou", type=float, default=0.5, help="mask IoU of a match (default 0.5)")
    p.add_argument("--match", choices=("iou", "position"), default="iou",
                   help="match by mask IoU (default), or by position: an entry within the "
                        "larger of the beam FWHM and half the true major axis")
    p.add_argument("--snr-bins", default=None, metavar="E1,E2,...",
                   help="SNR bin edges (default 3,5,7,10,20,50,100,1000)")
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args) -> int:
    from caesar_mrcnn.evaluation.evaluate import evaluate

    evaluate(args.data, args.weights, args.out, iou=args.iou, snr_bins=args.snr_bins,
             config=args.config, overrides=args.overrides, detections=args.detections,
             match=args.match)
    return 0


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="caesar-mrcnn side by side with Aegean and PyBDSF on "
                                       "simulated fields or real images",
                       description="Run Aegean (BANE + aegean), PyBDSF and caesar-mrcnn on "
                                   "labelled fields (--data; caesar-mrcnn given --weights) or on "
                                   "real images (IMAGE... --reference CATALOG; shipped detector "
                                   "unless --weights); score every catalogue by the same rules; "
                                   "write a side-by-side table (ECSV, CSV, Markdown) and a plot.")
    _add_common_config(p)
    p.add_argument("images", nargs="*", metavar="IMAGE",
                   help="real FITS images to cross-match with --reference")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="simulated-field folder, COCO JSON or caesar JSON list")
    p.add_argument("--reference", default=None, metavar="CATALOG",
                   help="reference catalogue of the IMAGEs (FITS, VOTable or CSV with RA/Dec "
                        "columns, optional major axis FWHM)")
    p.add_argument("--beam", default=None, metavar="BMAJ[,BMIN,BPA]",
                   help="beam (arcsec, deg) of IMAGEs whose header has none")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="trained caesar-mrcnn weights (with --data, without: classical finders "
                        "only; with --reference, default: the shipped detector)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--finders", default="caesar-mrcnn,aegean,pybdsf", metavar="A,B",
                   help="finders to run (default caesar-mrcnn,aegean,pybdsf)")
    p.add_argument("--snr-bins", default=None, metavar="E1,E2,...",
                   help="SNR bin edges (default 3,5,7,10,20,50,100,1000)")
    p.add_argument("--radius-beams", type=float, default=0.5,
                   help="match radius of compact sources in beam FWHM (default 0.5)")
    p.add_argument("--cores", type=int, default=1, help="processes for Aegean/PyBDSF")
    p.set_defaults(func=_run_compare)


def _run_compare(args) -> int:
    from caesar_mrcnn.detection.command import infer_config

    infer_config(args.config, args.overrides)  # checked even when caesar-mrcnn does not run
    command = "caesar-mrcnn " + " ".join(sys.argv[1:])
    if (args.reference is None) == (args.data is None) or (args.reference and not args.images):
        raise ConfigError("compare: give either --data PATH (simulated fields) or "
                          "IMAGE... --reference CATALOG (real images)")
    if args.reference is not None:
        from caesar_mrcnn.evaluation.compare_real import compare_reference

        compare_reference(args.images, args.reference, args.out, args.finders.split(","),
                          weights=args.weights, beam=args.beam, cores=args.cores,
                          config=args.config, overrides=args.overrides, command=command)
        return 0
    if args.images or args.beam:
        raise ConfigError("compare --data: IMAGE arguments and --beam go with --reference")
    from caesar_mrcnn.evaluation.compare import compare

    compare(args.data, args.out, weights=args.weights, finders=args.finders.split(","),
            snr_bins=args.snr_bins, radius_beams=args.radius_beams, cores=args.cores,
            config=args.config, overrides=args.overrides, command=command)
    return 0


def _add_infer(sub) -> None:
    p = sub.add_parser("infer", help="find, classify and measure the sources of FITS images",
                       description="Run the trained detector over images of any size in "
                                   "overlapping tiles, merge detections across tiles, measure "
                                   "each source and write a DS9 region file, a catalogue "
                                   "(.fits, .vot/.xml, .csv, .ecsv), JSON and a PNG overview. "
                                   "One image: name each output. Many images (or --list): "
                                   "--out-dir DIR gets DIR/<stem>.reg and "
                                   "DIR/<stem>_catalog.fits per image; the detector is "
                                   "loaded once.")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="FITS image(s)")
    p.add_argument("--list", metavar="FILE",
                   help="text file naming more images, one path per line (# comments)")
    p.add_argument("--out-dir", metavar="DIR",
                   help="output folder of a run over many images (created when missing)")
    p.add_argument("--write", default="regions,catalog", metavar="KINDS",
                   help="with --out-dir: files per image, from regions, catalog (FITS), json, "
                        "plot (PNG) (default regions,catalog)")
    p.add_argument("--regions", metavar="FILE.reg", help="DS9 region file (one image)")
    p.add_argument("--catalog", default=None, metavar="FILE",
                   help="catalogue (one image); format by extension: .fits, .vot/.xml, .csv, "
                        ".ecsv")
    p.add_argument("--json", default=None, metavar="FILE.json",
                   help="catalogue with masks in the original caesar-mrcnn JSON layout "
                        "(one image; caesar-mrcnn evaluate --detections reads it)")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="PNG overview (one image)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="trained detector (.npz written by caesar-mrcnn train; default: "
                        "the shipped reference detector)")
    _add_common_config(p)
    p.add_argument("--score-thr", type=float, default=None,
                   help="minimum objectness, 1 - p(background), whatever the class "
                        "(default 0.5; = --set score_thr=...)")
    p.add_argument("--tile", type=int, default=None,
                   help="tile side in pixels (default: the detector's input size)")
    p.add_argument("--overlap", type=int, default=None,
                   help="tile overlap in pixels (default: a quarter of the tile)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="tiles per model call (default 4)")
    p.add_argument("--beam", default=None, metavar="BMAJ[,BMIN,BPA]",
                   help="restoring beam (arcsec, arcsec, deg) of images whose header has none")
    p.add_argument("--plane", type=int, default=None,
                   help="plane index along the frequency/Stokes axis of a cube")
    p.add_argument("--hdu", type=_hdu_arg, default=None,
                   help="HDU index or EXTNAME (default: first HDU holding an image)")
    p.add_argument("--name-prefix", default=None, metavar="TEXT",
                   help="acronym before the IAU source names, e.g. CAESAR")
    p.add_argument("--horovod", action="store_true", default=None,
                   help="require a Horovod job (tiles split over ranks); under horovodrun, "
                        "mpirun or srun this is automatic")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar over the images (none either when stderr is not a "
                        "terminal)")
    p.set_defaults(func=_run_infer)


def _run_infer(args) -> int:
    from caesar_mrcnn.detection.command import infer_command

    def report(outcome) -> None:
        from tqdm import tqdm

        if outcome.error is not None:
            tqdm.write(f"{PROG}: error: {outcome.error}", file=sys.stderr)
        else:
            result = outcome.result
            tqdm.write(f"{outcome.image}: {len(result.objects)} sources -> "
                       + ", ".join(result.outputs.values()), file=sys.stdout)

    progress = (not args.no_progress and not getattr(args, "quiet", False)
                and sys.stderr.isatty())
    options = {"score_thr": args.score_thr, "tile": args.tile, "overlap": args.overlap,
               "batch_size": args.batch_size, "name_prefix": args.name_prefix}
    outcomes = infer_command(args.images, image_list=args.list, out_dir=args.out_dir,
                             write=args.write, regions=args.regions, catalog=args.catalog,
                             json_path=args.json, plot=args.plot, weights=args.weights,
                             config=args.config, overrides=args.overrides, options=options,
                             beam=args.beam, plane=args.plane, hdu=args.hdu,
                             horovod=args.horovod, on_image=report, progress=progress)
    failed = [o for o in outcomes if o.error is not None]
    if args.out_dir is not None and outcomes:
        sources = sum(len(o.result.objects) for o in outcomes if o.result is not None)
        print(f"{len(outcomes) - len(failed)} of {len(outcomes)} images done, {sources} "
              f"sources in {args.out_dir}" + (f"; {len(failed)} failed" if failed else ""))
    return failed[0].error.exit_code if failed else 0


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train the Mask R-CNN detector on labelled images",
                       description="Train the detector (checkpoints, TensorBoard logs, "
                                   "validation mAP) and write DIR/detector.npz. Run under "
                                   "horovodrun/mpirun/srun to train on several GPUs or nodes.")
    _add_common_config(p)
    p.add_argument("--data", metavar="DATASET",
                   help="training set: COCO JSON, caesar JSON list or simulated-field folder")
    p.add_argument("--val-data", metavar="DATASET", help="validation set (same formats)")
    p.add_argument("--backbone", metavar="NAME|PATH",
                   help="resnet18 or resnet50 (random init), a registered pretrained backbone "
                        "(e.g. ssl_byol_r18) or a backbone .npz file")
    p.add_argument("--init", metavar="DETECTOR",
                   help="start from this detector's weights (fine-tuning; same model and "
                        "preprocessing), e.g. caesar_mrcnn/weights/reference_r18.npz")
    p.add_argument("--out", metavar="DIR", help="output folder (default: out of the config)")
    p.add_argument("--epochs", type=int, metavar="N", help="train N epochs")
    p.add_argument("--steps", type=int, metavar="N", help="train N steps (wins over --epochs)")
    p.add_argument("--batch-size", type=int, metavar="N", help="images per step on each rank")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint in --out")
    p.add_argument("--stop-at", type=int, metavar="STEP",
                   help="stop after this step of the schedule with a checkpoint (a time "
                        "limit); resume later with --resume")
    p.set_defaults(func=_run_train)


def _run_train(args) -> int:
    from caesar_mrcnn.training.loop import train_command

    train_command(args.config, args.overrides, data=args.data, val_data=args.val_data,
                  backbone=args.backbone, init=args.init, out=args.out, epochs=args.epochs,
                  steps=args.steps, batch_size=args.batch_size, resume=args.resume,
                  stop_at=args.stop_at)
    return 0


# -- end of subcommands --




def _register() -> list:
    """All (name, add_function) pairs, in the order shown by --help."""
    table = []
    for name in ("simulate", "inspect", "make_cutouts", "pretrain", "backbones", "info", "ssl_eval",
                 "train", "infer", "evaluate", "compare"):
        add = globals().get(f"_add_{name}")
        if add is not None:
            table.append((name.replace("_", "-"), add))
    return table


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``caesar-mrcnn`` with all subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Detect and segment radio sources in continuum FITS images with a "
                    "self-supervised Mask R-CNN.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument("-v", "--verbose", action="store_true",
                      help="debug logging, and TensorFlow's own start-up notices")
    talk.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _name, add in _register():
        add(sub)
    return parser


# Commands whose INFO messages are their progress report; the others print problems only,
# and their result on stdout (--verbose shows everything).
_PROGRESS_COMMANDS = frozenset({"pretrain", "train", "evaluate", "compare", "ssl-eval"})

_TENSORFLOW_COMMANDS = frozenset({"pretrain", "ssl-eval", "train", "infer", "evaluate",
                                  "compare"})


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Imports TensorFlow, when the command first needs it, with its C++ notices off stderr.

    Its native libraries announce oneDNN and CPU features through a logger that
    ``TF_CPP_MIN_LOG_LEVEL`` does not reach, before Python can configure anything; they would
    bury the one-line error of a bad input. Importing on first use, not up front, lets a bad
    file or option fail in a second instead of after TensorFlow's start-up. ``--verbose`` or
    ``TF_CPP_MIN_LOG_LEVEL=0`` keeps the notices.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once, and so the real finders answer below
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def exec_module(module) -> None:
                sys.stderr.flush()
                saved = os.dup(2)
                try:
                    with open(os.devnull, "wb") as null:
                        os.dup2(null.fileno(), 2)
                        run(module)
                finally:
                    os.dup2(saved, 2)
                    os.close(saved)

            spec.loader.exec_module = exec_module
        return spec


def _quiet_tensorflow_import() -> None:
    """Make the first ``import tensorflow`` of this process quiet (see the class above)."""
    if "tensorflow" not in sys.modules and not any(
            isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(verbose=args.verbose, quiet=args.quiet,
                      progress=args.command in _PROGRESS_COMMANDS)
    quiet = not args.verbose and os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2") != "0"
    # TensorFlow's native ERROR-level notices (oneDNN "E0000 ... util.cc") come at run time
    # too, after the quiet import; level 3 keeps them off unless --verbose.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if quiet else "2")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if quiet and args.command in _TENSORFLOW_COMMANDS:
        _quiet_tensorflow_import()
    try:
        # SIGTERM (kill, batch schedulers) unwinds like Ctrl-C, so temporary files are removed.
        with sigterm_as_interrupt():
            args = _with_own_options(parser, args, argv)
            return int(args.func(args) or 0)
    except (CaesarError, BackboneError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; no partial output was written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
