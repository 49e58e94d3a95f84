"""emoji: Google's color emoji at 64×64, from the npm package emoji-datasource-google@16.0.0
(MIT; images Apache-2.0), read offline from the folder the user unpacked:

    npm pack emoji-datasource-google@16.0.0 && mkdir -p emoji && tar xzf emoji-datasource-google-16.0.0.tgz -C emoji
    rbm train --dataset emoji --data-dir emoji

`--data-dir` may be the folder that holds `package/` or `package/` itself. The package has 3,786
RGBA PNGs under `package/img/google/64/` and `package/emoji.json`, one entry per emoji: its
`image` file, its `category` (10 of them, e.g. "Smileys & Emotion", "Flags") and, for people and
hands, `skin_variations`: the same emoji in each of the five skin tones, each with its own `image`.

- Each image is composited over white (BACKGROUND), the page an emoji is usually shown on, and
  kept RGB (3, 64, 64).
- Label: the category of the entry the file belongs to, skin-tone variants included; classes
  are the categories in sorted order.
- Attributes: the five skin tones (SKIN_TONES, Unicode's modifiers U+1F3FB..U+1F3FF), true
  where a variant shows that tone (a two-person emoji may show two); the default yellow none.
- Split: within each category the entries (an emoji with all its skin-tone variants, so that
  no test image has a near-copy in training) are shuffled by `torch.Generator().manual_seed(seed)`
  and the first TEST_FRACTION of them go to test. Each split is then shuffled by the same
  generator, image by image, so `limit` keeps a random sample of every category rather than the
  first one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rbmcli.errors import RbmError

IMAGE_FOLDER = Path("img") / "google" / "64"  # inside package/
INDEX_FILE = "emoji.json"
BACKGROUND = (255, 255, 255)  # white: transparent pixels show the page behind the emoji
TEST_FRACTION = 0.1  # of each category's entries, rounded to the nearest count (half to even)
SKIN_TONES = {"1F3FB": "Light_Skin", "1F3FC": "Medium_Light_Skin", "1F3FD": "Medium_Skin",
              "1F3FE": "Medium_Dark_Skin", "1F3FF": "Dark_Skin"}  # Unicode modifier → attribute name
NPM_REMEDY = ("npm pack emoji-datasource-google@16.0.0 && mkdir -p emoji && "
              "tar xzf emoji-datasource-google-16.0.0.tgz -C emoji, then pass --data-dir emoji")


@dataclass
class EmojiEntry:
    """One emoji of emoji.json: its category and its image files, each with the skin tones it shows."""
    category: str
    images: list[tuple[str, frozenset[str]]] = field(default_factory=list)  # (file name, tone codes)


def package_folder(root: Path) -> Path:
    """The `package/` folder under `root` (or `root` itself when it is one); a missing one is an
    `RbmError` naming the npm command that fetches it."""
    for candidate in (root / "package", root, root / "emoji" / "package"):
        if (candidate / INDEX_FILE).is_file() and (candidate / IMAGE_FOLDER).is_dir():
            return candidate
    raise RbmError(f"emoji not found: looked for {root / 'package' / INDEX_FILE} and {root / 'package' / IMAGE_FOLDER} "
                   f"(or the same under {root}). Fetch it once with: {NPM_REMEDY}. Nothing is downloaded at run time.")


def _tones(variation_key: str) -> frozenset[str]:
    """The tone codes of a skin_variations key such as '1F3FB' or '1F3FB-1F3FD' (two people)."""
    return frozenset(code for code in variation_key.upper().split("-") if code in SKIN_TONES)


def read_index(path: Path) -> list[EmojiEntry]:
    """emoji.json → one EmojiEntry per emoji, in the file's order; anything malformed is an `RbmError`."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        entries = []
        for item in raw:
            entry = EmojiEntry(category=str(item["category"]), images=[(str(item["image"]), frozenset())])
            for key, variant in (item.get("skin_variations") or {}).items():
                entry.images.append((str(variant["image"]), _tones(key)))
            entries.append(entry)
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise RbmError(f"{path} is not the emoji index of emoji-datasource-google ({type(e).__name__}: {e}); "
                       f"unpack the package again: {NPM_REMEDY}.") from None
    if not entries:
        raise RbmError(f"{path} lists no emoji; unpack the package again: {NPM_REMEDY}.")
    return entries


def split_entries(entries: list[EmojiEntry], split: str, generator: torch.Generator) -> list[EmojiEntry]:
    """The entries of `split`: per category (sorted), round(TEST_FRACTION·count) shuffled entries
    go to test and the rest to train."""
    chosen = []
    for category in sorted({e.category for e in entries}):
        members = [e for e in entries if e.category == category]
        order = torch.randperm(len(members), generator=generator).tolist()
        n_test = round(TEST_FRACTION * len(members))
        chosen += [members[i] for i in (order[:n_test] if split == "test" else order[n_test:])]
    return chosen


def split_images(entries: list[EmojiEntry], folder: Path, split: str, seed: int
                 ) -> tuple[list[Path], list[str], list[frozenset[str]]]:
    """The image paths, categories and tones of `split`, in an order shuffled by the seed; a listed
    file that is absent is an `RbmError` (the package is incomplete)."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for entry in split_entries(entries, split, generator):
        for name, tone in entry.images:
            path = folder / IMAGE_FOLDER / name
            if not path.is_file():
                raise RbmError(f"{folder / INDEX_FILE} lists {name}, but {path} is missing; unpack the package "
                               f"again: {NPM_REMEDY}.")
            rows.append((path, entry.category, tone))
    rows = [rows[i] for i in torch.randperm(len(rows), generator=generator).tolist()]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def tone_attributes(tones: list[frozenset[str]]) -> torch.Tensor:
    """bool (n, 5): image i shows skin tone j (SKIN_TONES order)."""
    codes = list(SKIN_TONES)
    return torch.tensor([[code in t for code in codes] for t in tones], dtype=torch.bool).reshape(len(tones), len(codes))
