"""The emoji loader on a small fixture in the npm package's layout (package/emoji.json and
package/img/google/64/*.png), with the JSON written here."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from rbmcli.cli import app
from rbmcli.data.datasets import load_dataset
from rbmcli.errors import RbmError

# category → number of entries; every third entry has the five skin tones, the fifth a two-person one too
CATEGORIES = {"Animals & Nature": 10, "Flags": 15, "Smileys & Emotion": 3}
TONE_KEYS = ["1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"]


def color_of(i: int) -> tuple[int, int, int]:
    """A distinct opaque color for image number i (i < 200), read back to identify the image."""
    return (i, 255 - i, (7 * i) % 256)


def write_package(root):
    """package/ with emoji.json and one 64×64 RGBA PNG per image: a transparent border, a
    half-transparent stripe (alpha 128) and an opaque center of the image's own color.
    Returns {color: (file, category, tones)}."""
    folder = root / "package" / "img" / "google" / "64"
    folder.mkdir(parents=True)
    index, expected, count = [], {}, 0

    def image(name: str, category: str, tones: frozenset) -> None:
        nonlocal count
        rgba = np.zeros((64, 64, 4), np.uint8)
        rgba[8:56, 8:56] = (*color_of(count), 255)
        rgba[8:12, 8:56] = (0, 0, 200, 128)
        Image.fromarray(rgba, "RGBA").save(folder / name)
        expected[color_of(count)] = (name, category, tones)
        count += 1

    for category, n in CATEGORIES.items():
        for j in range(n):
            base = f"{category[:4].lower()}-{j}"
            item = {"name": base, "image": f"{base}.png", "category": category, "has_img_google": True}
            image(item["image"], category, frozenset())
            if j % 3 == 0:
                keys = TONE_KEYS + (["1F3FB-1F3FD"] if j == 3 else [])
                item["skin_variations"] = {k: {"unified": k, "image": f"{base}-{k.lower()}.png"} for k in keys}
                for k in keys:
                    image(f"{base}-{k.lower()}.png", category, frozenset(k.split("-")))
            index.append(item)
    (root / "package" / "emoji.json").write_text(json.dumps(index))
    return expected


def identify(images: torch.Tensor, expected: dict) -> list[tuple]:
    """The fixture row of each loaded image, read from its center pixel's color."""
    return [expected[tuple(img[:, 32, 32].tolist())] for img in images]


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    root = tmp_path_factory.mktemp("emoji")
    return root, write_package(root)


def test_images_are_composited_over_white_as_rgb_64(package):
    root, expected = package
    ds = load_dataset("emoji", "train", root)
    assert ds.images.dtype == torch.uint8 and ds.images.shape[1:] == (3, 64, 64)
    assert (ds.images[:, :, :8, :] == 255).all() and (ds.images[:, :, :, 60:] == 255).all()  # transparent → white
    # alpha 128 of (0, 0, 200) over white: 255 + (c − 255)·128/255, rounded
    stripe = ds.images[0, :, 10, 30].tolist()
    for got, c in zip(stripe, (0, 0, 200)):
        assert abs(got - (255 + (c - 255) * 128 / 255)) <= 1


def test_every_image_once_with_its_category_and_skin_tones(package):
    root, expected = package
    train, test = (load_dataset("emoji", s, root) for s in ("train", "test"))
    assert train.classes == sorted(CATEGORIES) == test.classes
    assert train.attribute_names == ["Light_Skin", "Medium_Light_Skin", "Medium_Skin", "Medium_Dark_Skin", "Dark_Skin"]
    seen = []
    for ds in (train, test):
        rows = identify(ds.images, expected)
        seen += [r[0] for r in rows]
        for (name, category, tones), label, attrs in zip(rows, ds.labels.tolist(), ds.attributes.tolist()):
            assert ds.classes[label] == category
            assert attrs == [k in tones for k in TONE_KEYS], name
    assert sorted(seen) == sorted(r[0] for r in expected.values())  # disjoint splits covering everything
    two = next(a for r, a in zip(identify(train.images, expected) + identify(test.images, expected),
                                 train.attributes.tolist() + test.attributes.tolist()) if r[0].endswith("1f3fb-1f3fd.png"))
    assert two == [True, False, True, False, False]


def base_of(name: str) -> str:
    """The entry a fixture file belongs to: 'anim-3-1f3fb.png' → 'anim-3'."""
    return "-".join(name[:-4].split("-")[:2])


def test_split_is_per_category_by_emoji_and_seeded(package):
    root, expected = package

    def test_bases(seed):
        return sorted(base_of(r[0]) for r in identify(load_dataset("emoji", "test", root, seed=seed).images, expected))

    bases = test_bases(0)
    per_category = {c: len({b for b in bases if b.startswith(c[:4].lower())}) for c in CATEGORIES}
    assert per_category == {c: round(0.1 * n) for c, n in CATEGORIES.items()}  # 1, 2 (1.5 rounds to 2), 0
    for base in set(bases):  # every skin-tone variant goes with its emoji
        assert bases.count(base) == sum(base_of(r[0]) == base for r in expected.values())
    assert test_bases(0) == bases
    assert any(test_bases(s) != bases for s in (1, 2, 3))


def test_limit_keeps_the_first_images_of_a_shuffled_split(package):
    root, expected = package
    full, first = load_dataset("emoji", "train", root), load_dataset("emoji", "train", root, limit=7)
    assert torch.equal(first.images, full.images[:7]) and torch.equal(first.labels, full.labels[:7])
    assert first.attributes.shape == (7, 5)
    categories = [r[1] for r in identify(full.images, expected)]
    assert categories != sorted(categories)  # not grouped by category


def test_package_folder_itself_and_size_are_accepted(package):
    root, _ = package
    a, b = load_dataset("emoji", "train", root), load_dataset("emoji", "train", root / "package")
    assert torch.equal(a.images, b.images)
    assert load_dataset("emoji", "test", root, size=32).images.shape[1:] == (3, 32, 32)


def test_missing_package_names_the_npm_command_and_downloads_nothing(tmp_path):
    with pytest.raises(RbmError, match="npm pack emoji-datasource-google@16.0.0"):
        load_dataset("emoji", "train", tmp_path, download=True)
    assert list(tmp_path.iterdir()) == []
    r = CliRunner().invoke(app, ["train", "--dataset", "emoji", "--data-dir", str(tmp_path), "--device", "cpu", "-q",
                                 "--out", str(tmp_path / "run")])
    assert r.exit_code == 1 and "Error:" in r.output and "npm pack" in r.output and "Traceback" not in r.output


def test_missing_image_and_broken_index_are_one_clear_error(tmp_path):
    write_package(tmp_path)
    (tmp_path / "package" / "img" / "google" / "64" / "flag-4.png").unlink()
    with pytest.raises(RbmError, match="flag-4.png.*missing"):
        for split in ("train", "test"):  # the file is in one of them
            load_dataset("emoji", split, tmp_path)
    (tmp_path / "package" / "emoji.json").write_text('[{"image": "x.png"}]')
    with pytest.raises(RbmError, match="not the emoji index"):
        load_dataset("emoji", "train", tmp_path)


def test_emoji_occluder_is_a_black_bar_across_the_eyes():
    from rbmcli.eval.occlusion import occlude, occluder

    images = torch.full((41, 3, 64, 64), 200, dtype=torch.uint8)
    center, value = occluder("emoji")
    occluded, bands = occlude(images, torch.Generator().manual_seed(3), center, value)
    tops = bands.int().argmax(1)
    assert set(tops.tolist()) <= set(range(17, 26)) and len(set(tops.tolist())) > 3  # ⌊0.4·64⌋ − 9//2 ± 64//14
    assert (bands.sum(1) == 9).all() and bands[:, 25].all()  # 9 rows (64/7), row 25 (the eyes) always covered
    mask = bands[:, None, :, None].expand_as(occluded)
    assert (occluded[mask] == 0).all() and (occluded[~mask] == 200).all()
    assert occluder("colored-mnist") == (0.5, 255)
