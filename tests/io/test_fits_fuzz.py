"""A reproducible fuzz corpus of damaged and unusual FITS files.

Every case is built at test time, from a seeded generator, out of the headers of the real images
(when their folder is present) and of simulated images: truncation at random offsets, axis sizes
that disagree with the data, every BITPIX, missing, garbage and non-finite WCS keywords,
zero-length axes, absurd axis claims, non-ASCII and repeated cards, tables in place of images,
tile-compressed HDUs with a damaged tile, truncated gzip files.

Each case must give either a correct result or a one-line InputImageError naming the file: no
other exception, no hang (a per-case time limit), no allocation driven by the header alone, and,
for the cases run through ``infer_image``, no output file when it fails.
"""

from __future__ import annotations

import gzip
import os
import signal
import tracemalloc
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from caesar_mrcnn.errors import InputImageError
from caesar_mrcnn.io.fits import open_image

REAL = Path(os.environ.get("CAESAR_MRCNN_REAL")
            or Path(__file__).resolve().parents[2] / ".." / "shared" / "real")
SEED = 20261130
CASE_SECONDS = 20
NY, NX = 40, 48
BLOCK = 2880

# Real images whose headers seed the corpus (when the folder is present).
REAL_IMAGES = (
    "extended/mirabest_first/100_122.412+034.927_0.0825_0124.74.fits",
    "extended/first_J001357-091951.fits",
    "extended/vlass_3.1_ql_J001357.17-091951.5_2arcmin.fits",
    "fields/nvss_skyview_J001357.2-091951.5_300px.fits",
    "fields/lotss_dr1_P205+55_cutout400.fits",
    "fields/magpis_20cm_G10.5+0.0_300px.fits",
    "fields/parkes_chipass_1904-66_SIN.fits",
    "fields/wsrt_abell2255_pybdsf_ch0_I.fits",
    "fields/lofar_hba_GRB201006A_2min_snapshot_cutout.fits",
    "fields/atca_scorpio_S17Field.fits",
)


# --- building files ---------------------------------------------------------------------------


def _cards(header: fits.Header) -> list[bytes]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = header.tostring(padding=False, endcard=False)
    raw = text.encode("ascii", "replace")
    return [raw[i:i + 80] for i in range(0, len(raw), 80)]


def _card(text: str | bytes) -> bytes:
    raw = text.encode("latin-1") if isinstance(text, str) else text
    return raw[:80].ljust(80)


def _file(cards: list[bytes], data: bytes) -> bytes:
    head = b"".join(cards) + _card("END")
    head += b" " * (-len(head) % BLOCK)
    return head + data + bytes(-len(data) % BLOCK)


def _structural(bitpix: int, shape: tuple[int, ...]) -> list[bytes]:
    """SIMPLE, BITPIX, NAXIS, NAXISn for a numpy-order ``shape``."""
    out = [_card(f"SIMPLE  = {'T':>20}"), _card(f"BITPIX  = {bitpix:>20}"),
           _card(f"NAXIS   = {len(shape):>20}")]
    for k, n in enumerate(reversed(shape), start=1):
        out.append(_card(f"NAXIS{k:<3}= {n:>20}"))
    return out


_STRUCT_KEYS = ("SIMPLE", "BITPIX", "NAXIS", "EXTEND", "BSCALE", "BZERO", "BLANK", "END",
                "CHECKSUM", "DATASUM", "DATAMIN", "DATAMAX")


@dataclass
class Base:
    """A starting image: its non-structural header cards, its array shape and pixels."""

    name: str
    cards: list[bytes]
    shape: tuple[int, ...]
    data: np.ndarray  # float32, numpy order, shape ``shape``


def _raw_cards(path: Path) -> list[bytes]:
    """The primary header of a file as its raw 80-byte cards (oddities included), END excluded."""
    out = []
    with open(path, "rb") as fh:
        while True:
            block = fh.read(BLOCK)
            if len(block) < BLOCK:
                return out
            for i in range(0, BLOCK, 80):
                card = block[i:i + 80]
                if card.startswith(b"END     ") or card.rstrip() == b"END":
                    return out
                out.append(card)


def _base_from_cards(name: str, cards: list[bytes], rng) -> Base:
    """A small image with the non-structural cards of a real or simulated header."""
    def key(card: bytes) -> str:
        return card[:8].decode("latin-1").strip()

    naxis = next((int(c[10:30]) for c in cards if key(c) == "NAXIS"), 2)
    shape = [1] * max(naxis - 2, 0) + [NY, NX]
    keep = [c for c in cards if not key(c).startswith("NAXIS") and key(c) not in _STRUCT_KEYS]
    data = rng.normal(0.0, 1e-3, size=shape).astype(np.float32)
    return Base(name, keep, tuple(shape), data)


def _bases(rng) -> list[Base]:
    out = []
    for rel in REAL_IMAGES:
        path = REAL / rel
        if path.is_file():
            out.append(_base_from_cards(Path(rel).stem[:24], _raw_cards(path), rng))
    from astropy.wcs import WCS

    # simulated headers: projections, frames, extra axes, rotation, beams the ways files keep them
    variants = [(("RA---SIN", "DEC--SIN"), 0.0, "header"),
                (("RA---TAN", "DEC--TAN"), 30.0, "header"),
                (("GLON-CAR", "GLAT-CAR"), 0.0, "header"),
                (("RA---NCP", "DEC--NCP"), -12.0, "aips"),
                (("RA---SIN", "DEC--SIN", "FREQ"), 0.0, "none"),
                (("RA---TAN", "DEC--TAN", "FREQ", "STOKES"), 0.0, "survey"),
                (("RA---SIN", "DEC--SIN", "STOKES", "FREQ"), 75.0, "header")]
    for k, (ctype, angle, beam) in enumerate(variants):
        naxis = len(ctype)
        w = WCS(naxis=naxis)
        w.wcs.ctype = list(ctype)
        w.wcs.crval = [150.0, 2.0] + [1.4e9 if c == "FREQ" else 1.0 for c in ctype[2:]]
        w.wcs.crpix = [NX / 2, NY / 2] + [1.0] * (naxis - 2)
        w.wcs.cdelt = [-1.0 / 3600, 1.0 / 3600] + [1e6] * (naxis - 2)
        t = np.radians(angle)
        pc = np.eye(naxis)
        pc[:2, :2] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
        w.wcs.pc = pc
        hdr = w.to_header()
        hdr["BUNIT"] = "JY/BEAM"
        if beam == "header":
            hdr["BMAJ"], hdr["BMIN"], hdr["BPA"] = 3e-3, 2e-3, 10.0
        elif beam == "aips":
            hdr.add_history("AIPS   CLEAN BMAJ=  3.0000E-03 BMIN=  2.0000E-03 BPA=  10.00")
        elif beam == "survey":
            hdr["SURVEY"] = "NVSS"
        hdr["NAXIS"] = naxis
        out.append(_base_from_cards(f"sim{k}", _cards(hdr), rng))
    return out


# --- mutations: (label, expectation, builder(base, rng) -> bytes) ------------------------------
# expectation: "same" (reads, equal to the clean file), "ok" (reads or fails cleanly),
# "error" (must fail cleanly).


def _encode(data: np.ndarray, bitpix: int) -> bytes:
    dtype = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}[bitpix]
    if bitpix > 0:
        info = np.iinfo(np.dtype(dtype))
        data = np.clip(np.round(data * 1e4), info.min, info.max)
    return np.asarray(data, dtype=dtype).tobytes()


def _clean(b: Base, rng) -> bytes:
    return _file(_structural(-32, b.shape) + b.cards, _encode(b.data, -32))


def _truncate(b: Base, rng) -> bytes:
    raw = _clean(b, rng)
    return raw[:int(rng.integers(1, len(raw) - 1))]


def _bitpix(bitpix: int):
    def build(b: Base, rng) -> bytes:
        return _file(_structural(bitpix, b.shape) + b.cards, _encode(b.data, bitpix))
    return build


def _scaled(b: Base, rng) -> bytes:
    cards = _structural(16, b.shape) + [_card("BSCALE  = 1.0E-4"), _card("BZERO   = 0.0"),
                                        _card("BLANK   = -32768")] + b.cards
    return _file(cards, _encode(b.data, 16))


def _naxis_value(axis: int, value: str):
    def build(b: Base, rng) -> bytes:
        cards = _structural(-32, b.shape)
        cards[2 + axis] = _card(f"NAXIS{axis:<3}= {value:>20}")
        return _file(cards + b.cards, _encode(b.data, -32))
    return build


def _naxis_count(value: str):
    def build(b: Base, rng) -> bytes:
        cards = _structural(-32, b.shape)
        cards[2] = _card(f"NAXIS   = {value:>20}")
        return _file(cards + b.cards, _encode(b.data, -32))
    return build


def _short_data(b: Base, rng) -> bytes:
    data = _encode(b.data, -32)
    raw = _file(_structural(-32, b.shape) + b.cards, data[: len(data) // 3])
    return raw[: len(raw) - BLOCK] if len(raw) > 2 * BLOCK else raw


def _set_card(key: str, value: str):
    """Replace (or add) a header card with a raw value string."""
    def build(b: Base, rng) -> bytes:
        new = _card(f"{key:<8}= {value}")
        cards = [c for c in b.cards if c[:8].decode("latin-1").strip() != key]
        return _file(_structural(-32, b.shape) + cards + [new], _encode(b.data, -32))
    return build


def _drop_cards(prefixes: tuple[str, ...]):
    def build(b: Base, rng) -> bytes:
        cards = [c for c in b.cards
                 if not c[:8].decode("latin-1").strip().startswith(prefixes)]
        return _file(_structural(-32, b.shape) + cards, _encode(b.data, -32))
    return build


def _odd_cards(b: Base, rng) -> bytes:
    extra = [_card(b"COMMENT tab\there"), _card(b"HISTORY \xff\xfe bytes"),
             _card("COMMENT \x07 bell"), _card(b"NONASCII= '\xe9t\xe9'"),
             _card("DUPKEY  = 1"), _card("DUPKEY  = 2"), _card("BAD KEY = 3"),
             _card("GARBAGE = 12x3 / not a number"), _card("       = 'no keyword'")]
    cards = list(b.cards)
    if cards:
        cards.append(cards[int(rng.integers(len(cards)))])  # a repeated real card
    return _file(_structural(-32, b.shape) + cards + extra, _encode(b.data, -32))


def _scramble_card(b: Base, rng) -> bytes:
    """One real card with random bytes in its value field."""
    cards = list(b.cards)
    if cards:
        i = int(rng.integers(len(cards)))
        junk = bytes(rng.integers(32, 256, size=70, dtype=np.uint8))
        cards[i] = (cards[i][:10] + junk)[:80]
    return _file(_structural(-32, b.shape) + cards, _encode(b.data, -32))


def _table_only(b: Base, rng) -> bytes:
    import io

    cols = [fits.Column("flux", "E", array=np.arange(5.0)), fits.Column("x", "J",
                                                                        array=np.arange(5))]
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(buf)
    return buf.getvalue()


def _compressed(damage: bool):
    def build(b: Base, rng) -> bytes:
        import io

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = fits.Header()
            for c in b.cards:
                try:
                    card = fits.Card.fromstring(c.decode("latin-1"))
                    card.verify("exception")
                    if card.keyword in ("COMMENT", "HISTORY", "") or card.keyword in header:
                        continue
                    header.append(card, bottom=True)
                except Exception:  # cards astropy refuses to write stay out of this case
                    continue
            # RICE with a fixed dither seed: the same bytes on every run (GZIP tiles carry a
            # time stamp)
            comp = fits.CompImageHDU(np.squeeze(b.data), header, compression_type="RICE_1",
                                     quantize_level=16, dither_seed=1, tile_shape=(8, 8))
            buf = io.BytesIO()
            fits.HDUList([fits.PrimaryHDU(), comp]).writeto(buf, output_verify="silentfix")
        raw = bytearray(buf.getvalue())
        if damage:
            # flip bytes in the heap, where the compressed tiles are
            end = len(raw.rstrip(b"\0"))
            for pos in rng.integers(end - 400, end, size=12):
                raw[int(pos)] ^= 0xFF
        return bytes(raw)
    return build


def _gzip_cut(b: Base, rng) -> bytes:
    packed = gzip.compress(_clean(b, rng), mtime=0)
    return packed[: int(rng.integers(20, len(packed) - 4))]


def _gzip_whole(b: Base, rng) -> bytes:
    return gzip.compress(_clean(b, rng), mtime=0)


MUTATIONS = [
    ("clean", "same", _clean),
    ("truncate1", "ok", _truncate),
    ("truncate2", "ok", _truncate),
    ("short_data", "error", _short_data),
    *[(f"bitpix_{str(bp).replace('-', 'm')}", "ok", _bitpix(bp)) for bp in (8, 16, 32, 64, -64)],
    ("scaled_blank", "ok", _scaled),
    ("naxis1_larger", "error", _naxis_value(1, str(NX * 50))),
    ("naxis2_smaller", "ok", _naxis_value(2, str(NY // 2))),
    ("naxis1_zero", "error", _naxis_value(1, "0")),
    ("naxis1_absurd", "error", _naxis_value(1, "2147483647")),
    ("naxis2_negative", "error", _naxis_value(2, "-40")),
    ("naxis2_garbage", "error", _naxis_value(2, "'forty'")),
    ("naxis_999", "error", _naxis_count("999")),
    ("naxis_zero", "error", _naxis_count("0")),
    ("crval_garbage", "same", _set_card("CRVAL1", "'not-a-number'")),
    ("cdelt_nan", "same", _set_card("CDELT1", "NAN")),
    ("cdelt_zero", "same", _set_card("CDELT2", "0.0")),
    ("ctype_garbage", "same", _set_card("CTYPE1", "'XX--QQQ'")),
    ("no_wcs", "same", _drop_cards(("CTYPE", "CRVAL", "CRPIX", "CDELT", "CD", "PC", "CROTA"))),
    ("bmaj_inf", "same", _set_card("BMAJ", "1E999")),
    ("odd_cards", "same", _odd_cards),
    ("scrambled_card", "ok", _scramble_card),
    ("table_only", "error", _table_only),
    ("fpack", "ok", _compressed(False)),
    ("fpack_damaged", "ok", _compressed(True)),
    ("gzip", "same", _gzip_whole),
    ("gzip_cut", "error", _gzip_cut),
]


def _corpus() -> list[tuple[str, str, bytes]]:
    rng = np.random.default_rng(SEED)
    cases = []
    for base in _bases(rng):
        for label, expect, build in MUTATIONS:
            cases.append((f"{base.name}-{label}", expect, build(base, rng)))
    return cases


CORPUS = _corpus()


# --- running a case ---------------------------------------------------------------------------


class CaseTimeout(BaseException):  # not swallowed by any "except Exception"
    pass


def _alarm(signum, frame):
    raise CaseTimeout(f"case took longer than {CASE_SECONDS} s")


def _read(path: Path):
    """The whole plane through windows (as infer reads it), or the InputImageError."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    try:
        with open_image(path) as img:
            ny, nx = img.shape
            parts = [img.read_window(y, y + 16, 0, nx) for y in range(0, ny, 16)]
            return np.concatenate(parts, axis=0) if parts else np.empty((0, nx))
    except InputImageError as exc:
        return exc
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_corpus_is_large_and_reproducible():
    assert len(CORPUS) >= 200
    again = _corpus()
    assert [(n, e, d) for n, e, d in again] == [(n, e, d) for n, e, d in CORPUS]


@pytest.mark.parametrize("name, expect, blob", CORPUS, ids=[c[0] for c in CORPUS])
def test_fuzz_case(tmp_path, name, expect, blob):
    suffix = ".fits.gz" if "gzip" in name else ".fits"
    path = tmp_path / f"case{suffix}"
    path.write_bytes(blob)
    watch = "naxis" in name  # no allocation from a header's word alone
    if watch:
        tracemalloc.start()
    try:
        outcome = _read(path)
    finally:
        if watch:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert peak < 50e6, f"{name}: {peak / 1e6:.0f} MB allocated"
    if isinstance(outcome, InputImageError):
        message = str(outcome)
        assert expect != "same", message
        assert str(path) in message and "\n" not in message, message
        return
    assert expect != "error", f"{name}: read although it must fail"
    assert outcome.dtype == np.float32 and outcome.ndim == 2
    if expect == "same":
        base = next(c for c in CORPUS if c[0] == name.rsplit("-", 1)[0] + "-clean")
        clean = tmp_path / "clean.fits"
        clean.write_bytes(base[2])
        reference = _read(clean)
        np.testing.assert_array_equal(outcome, reference)


_INFER_CASES = [c for c in CORPUS if c[0].split("-")[-1] in (
    "truncate1", "short_data", "naxis1_absurd", "table_only", "gzip_cut", "odd_cards",
    "fpack_damaged", "clean")][:24]


def _empty_predictor(batch, windows):
    n, size = len(batch), batch.shape[1]
    return {"scores": np.zeros((n, 1)), "classes": np.zeros((n, 1), dtype=np.int64),
            "masks": np.zeros((n, 1, size, size), np.float32),
            "valid": np.zeros((n, 1), dtype=bool)}


@pytest.mark.parametrize("name, expect, blob", _INFER_CASES, ids=[c[0] for c in _INFER_CASES])
def test_fuzz_case_through_infer_leaves_no_partial_output(tmp_path, name, expect, blob):
    from caesar_mrcnn.detection.infer import InferConfig, infer_image

    suffix = ".fits.gz" if "gzip" in name else ".fits"
    path = tmp_path / f"case{suffix}"
    path.write_bytes(blob)
    out = tmp_path / "out"
    out.mkdir()
    outputs = {"regions": out / "a.reg", "catalog": out / "a.fits", "json_path": out / "a.json"}
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS * 3)
    try:
        infer_image(path, predictor=_empty_predictor, config=InferConfig(tile=32, overlap=8),
                    **outputs)
    except InputImageError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        assert list(out.iterdir()) == []
    else:
        assert sorted(p.name for p in out.iterdir()) == ["a.fits", "a.json", "a.reg"]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
