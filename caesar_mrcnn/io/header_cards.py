"""Header cards real archives get wrong, set aside before anything reads the header.

Survey cutout services write COMMENT cards with tab characters, keywords twice, values that do
not parse. astropy reads such a header but complains, card by card and once per use (every
``WCS(header)`` verifies the header again), burying the one warning that matters. Here the
header is checked once: unusable cards are dropped from the copy the program works with and
reported as a single count.
"""

from __future__ import annotations

import warnings
from collections import Counter

from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

# Keywords that describe the data layout: never dropped (astropy has already used them).
_STRUCTURAL = frozenset({"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT",
                         "END", "ZIMAGE", "ZBITPIX", "ZNAXIS", "ZCMPTYPE", "ZTENSION"})
_COMMENTARY = frozenset({"COMMENT", "HISTORY", ""})


def _structural(keyword: str) -> bool:
    return keyword in _STRUCTURAL or keyword.startswith(("NAXIS", "ZNAXIS", "ZTILE", "TFORM",
                                                         "TTYPE", "ZNAME", "ZVAL"))


def _card_problem(card: fits.Card) -> str | None:
    """Why a card is unusable (short text), or None when it is fine."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        try:
            errors = card._verify()
            if not errors and card.keyword not in _COMMENTARY:
                card.value  # noqa: B018 - parsing the value is the check
        except Exception:  # astropy raises several types for malformed cards
            return "unparsable value"
    if errors:
        text = str(errors[0]).lower() if len(errors) else ""
        if "unprintable" in text or "ascii" in text:
            return "non-ASCII or unprintable text"
        return "not FITS standard"
    return None


def clean_header(header: fits.Header) -> tuple[fits.Header, Counter]:
    """A copy of ``header`` without unusable and repeated cards.

    Dropped: cards astropy cannot verify (unprintable or non-ASCII text, values that do not
    parse) and second and later occurrences of a keyword (astropy and WCSLIB use the first).
    Structural keywords (BITPIX, NAXISn, ...) are kept whatever they hold.

    Returns
    -------
    header : astropy.io.fits.Header
        The cleaned copy.
    dropped : collections.Counter
        Number of dropped cards by reason.
    """
    dropped: Counter = Counter()
    seen: set[str] = set()
    cards = []
    for card in header.cards:
        key = card.keyword
        if not _structural(key):
            problem = _card_problem(card)
            if problem is not None:
                dropped[problem] += 1
                continue
            if key not in _COMMENTARY:
                if key in seen:
                    dropped["repeated keyword"] += 1
                    continue
                seen.add(key)
        cards.append(card)
    if not dropped:
        return header.copy(), dropped
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        out = fits.Header()
        for card in cards:
            out.append(card, end=True, useblanks=False, bottom=True)
    return out, dropped


def describe_dropped(dropped: Counter) -> str:
    """``'5 non-standard header cards ignored (5 non-ASCII or unprintable text)'``."""
    total = sum(dropped.values())
    parts = ", ".join(f"{n} {why}" for why, n in dropped.most_common())
    noun = "card" if total == 1 else "cards"
    return f"{total} non-standard header {noun} ignored ({parts})"
