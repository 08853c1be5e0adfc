"""Folders of images in class sub-folders, built in tmp_path with Pillow."""
import numpy as np
import pytest
from PIL import Image

from asimc.data import load_dataset
from asimc.errors import InputDataError, UsageError


def save(path, array, mode=None, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.asarray(array, dtype=np.uint8))
    if mode:
        image = image.convert(mode)
    image.save(path, **options)
    return path


def gray(value, size=(4, 6)):
    return np.full(size, value, dtype=np.uint8)


def test_class_folders_give_sorted_labels_round_robin_and_sources(tmp_path):
    save(tmp_path / "cat" / "b.png", gray(10))
    save(tmp_path / "cat" / "a.png", gray(20))
    save(tmp_path / "ant" / "z.bmp", gray(30))
    save(tmp_path / "dog" / "deep" / "c.gif", gray(40))
    data = load_dataset(str(tmp_path))
    assert data.classes == ("ant", "cat", "dog")
    assert data.sources == ("ant/z.bmp", "cat/a.png", "dog/deep/c.gif", "cat/b.png")
    assert list(data.y) == [0, 1, 2, 1]
    assert data.x.shape == (4, 1, 4, 6) and data.x.dtype == np.float32
    np.testing.assert_allclose(data.x[:, 0, 0, 0], np.array([30, 20, 40, 10]) / 255, atol=1e-6)
    assert "3 classes: ant, cat, dog" in data.description


def test_limit_takes_a_balanced_subset_before_reading(tmp_path):
    for label in ("a", "b"):
        for index in range(3):
            save(tmp_path / label / f"{index}.png", gray(index))
    (tmp_path / "b" / "9.png").write_bytes(b"broken, but past the limit")
    data = load_dataset(str(tmp_path), limit=4)
    assert list(data.y) == [0, 1, 0, 1]


def test_rgb_images_load_as_three_channels(tmp_path):
    rgb = np.zeros((5, 7, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 2] = 255, 51
    save(tmp_path / "red" / "1.png", rgb)
    save(tmp_path / "red" / "2.jpg", rgb, quality=100)
    data = load_dataset(str(tmp_path))
    assert data.x.shape == (2, 3, 5, 7)
    np.testing.assert_allclose(data.x[0, :, 0, 0], [1.0, 0.0, 0.2], atol=1e-6)
    np.testing.assert_allclose(data.x[1, :, 2, 3], [1.0, 0.0, 0.2], atol=0.03)


def test_grayscale_option_forces_the_channels(tmp_path):
    save(tmp_path / "a" / "rgb.png", np.full((4, 4, 3), 200, np.uint8))
    save(tmp_path / "b" / "gray.png", gray(100, (4, 4)))
    assert load_dataset(str(tmp_path)).x.shape == (2, 3, 4, 4)          # mixed: RGB
    assert load_dataset(str(tmp_path), grayscale=True).x.shape == (2, 1, 4, 4)
    only_gray = load_dataset(str(tmp_path / "b"))                        # unlabelled
    assert only_gray.x.shape == (1, 1, 4, 4)
    as_rgb = load_dataset(str(tmp_path / "b"), grayscale=False).x
    assert as_rgb.shape == (1, 3, 4, 4) and np.allclose(as_rgb, 100 / 255)


def test_palette_and_alpha_images_convert(tmp_path):
    save(tmp_path / "p" / "pal.gif", np.full((3, 3, 3), 255, np.uint8), mode="P")
    save(tmp_path / "q" / "alpha.png", np.full((3, 3, 4), 255, np.uint8))
    data = load_dataset(str(tmp_path))
    assert data.x.shape == (2, 3, 3, 3) and np.allclose(data.x, 1.0)


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "a" / "deep.png"
    path.parent.mkdir()
    Image.fromarray(np.full((2, 2), 32768, dtype=np.uint16)).save(path)
    data = load_dataset(str(tmp_path))
    assert data.x.shape == (1, 1, 2, 2)
    np.testing.assert_allclose(data.x, 32768 / 65535, rtol=1e-5)


def test_image_size_resizes_to_height_by_width(tmp_path):
    save(tmp_path / "a" / "small.png", gray(255, (4, 4)))
    save(tmp_path / "b" / "wide.png", gray(255, (6, 12)))
    data = load_dataset(str(tmp_path), image_size=(8, 5))
    assert data.x.shape == (2, 1, 8, 5)
    np.testing.assert_allclose(data.x, 1.0, atol=1e-6)


def test_different_sizes_without_image_size_ask_for_it(tmp_path):
    save(tmp_path / "a" / "x.png", gray(0, (4, 4)))
    save(tmp_path / "b" / "y.png", gray(0, (6, 12)))
    with pytest.raises(InputDataError, match="a/x.png is 4x4, b/y.png is 6x12.*image size"):
        load_dataset(str(tmp_path))


def test_mean_and_std_normalise_each_channel(tmp_path):
    save(tmp_path / "a" / "x.png", np.full((2, 2, 3), 255, np.uint8))
    data = load_dataset(str(tmp_path), mean=(0.5, 0.5, 0.0), std=(0.5, 0.25, 2.0))
    np.testing.assert_allclose(data.x[0, :, 0, 0], [1.0, 2.0, 0.5], rtol=1e-6)


def test_empty_folder(tmp_path):
    (tmp_path / "cats").mkdir()
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(InputDataError, match="no images found"):
        load_dataset(str(tmp_path))


def test_empty_class_folder_keeps_label_indices(tmp_path):
    (tmp_path / "a").mkdir()
    save(tmp_path / "b" / "1.png", gray(1))
    data = load_dataset(str(tmp_path))
    assert data.classes == ("a", "b") and list(data.y) == [1]


def test_hidden_and_non_image_files_are_ignored(tmp_path):
    save(tmp_path / "a" / "1.png", gray(1))
    (tmp_path / "a" / "README.md").write_text("hello")
    save(tmp_path / "a" / ".thumb.png", gray(2))
    save(tmp_path / ".cache" / "x.png", gray(3))
    data = load_dataset(str(tmp_path))
    assert data.classes == ("a",) and data.sources == ("a/1.png",)


def test_unreadable_image_names_the_file(tmp_path):
    save(tmp_path / "a" / "good.png", gray(1))
    (tmp_path / "a" / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(InputDataError, match="cannot read image .*a/bad.png"):
        load_dataset(str(tmp_path))


def test_truncated_image_names_the_file(tmp_path):
    path = save(tmp_path / "a" / "cut.jpg", np.random.default_rng(0).integers(0, 255, (64, 64)))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputDataError, match="cannot read image .*cut.jpg"):
        load_dataset(str(tmp_path), grayscale=True)


def test_loose_images_next_to_class_folders_are_ambiguous(tmp_path):
    save(tmp_path / "a" / "1.png", gray(1))
    save(tmp_path / "stray.png", gray(1))
    with pytest.raises(InputDataError, match="both directly"):
        load_dataset(str(tmp_path))


@pytest.mark.parametrize("size", [(0, 4), (4,), "big"])
def test_bad_image_size_is_a_usage_error(tmp_path, size):
    save(tmp_path / "a" / "1.png", gray(1))
    with pytest.raises(UsageError, match="image size"):
        load_dataset(str(tmp_path), image_size=size)
