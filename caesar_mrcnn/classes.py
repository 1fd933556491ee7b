"""The source classes of caesar-mrcnn, with the ids used by datasets and models.

The order follows the original caesar-mrcnn class set. Id 0 is the background in every model.
"""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = (
    "spurious",
    "compact",
    "extended",
    "extended-multisland",
    "flagged",
)
"""Class names; the model class id of ``CLASS_NAMES[i]`` is ``i + 1``."""

CLASS_IDS: dict[str, int] = {name: i + 1 for i, name in enumerate(CLASS_NAMES)}

EXTENDED_CLASSES: tuple[str, ...] = ("extended", "extended-multisland")
"""The classes of resolved sources whose parts (islands, hot spots) join them."""

CLASS_COLOURS: dict[str, str] = {
    "spurious": "red",
    "compact": "green",
    "extended": "cyan",
    "extended-multisland": "magenta",
    "flagged": "yellow",
}
"""DS9 / matplotlib colour of each class in regions and plots."""


def class_id(name: str) -> int:
    """Model id (1-based) of a class name; raises ``KeyError`` for an unknown name."""
    return CLASS_IDS[name]


def class_name(cid: int) -> str:
    """Class name of a model id (1-based)."""
    return CLASS_NAMES[int(cid) - 1]
