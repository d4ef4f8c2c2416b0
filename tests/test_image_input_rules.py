"""How image pixels of every dtype become uint8, and which inputs are refused (README: "Input rules and failures").

Nothing is wrapped modulo 256 or clipped: a value that would not land in 0..255 is an
error that names the problem and the fix.
"""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from torch import nn

from sktransfer import TransferClassifier
from sktransfer._inputs.image import ImageAdapter
from sktransfer._inputs.pixels import to_uint8_chw
from sktransfer._spec.registry import ImagePreprocessing
from sktransfer.exceptions import InputModalityError, InvalidInputError

ADAPTER = ImageAdapter("tiny", ImagePreprocessing(input_size=16))
RAMP16 = np.array([[0, 257, 32768, 65535]] * 4, dtype=np.uint16)  # -> 0, 1, 128, 255


def decoded(X):
    """Every image of X, checked and decoded as the estimators do."""
    source = ADAPTER.check(X)
    return [source[i] for i in range(len(source))]


def first_row(X):
    return decoded(X)[0][0, 0].tolist()  # red channel, top row of the first image


class TinyCNN(nn.Module):
    """Counts forward calls over all its copies (fit copies the module): a refused X must not reach it."""

    calls = 0

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        TinyCNN.calls += 1
        return self.pool(torch.relu(self.conv(x))).flatten(1)


def tiny_clf(**kw):
    return TransferClassifier(TinyCNN(), image_size=16, max_epochs=1, batch_size=4, random_state=0, **kw)


# ---------------------------------------------------------------- dtypes


def test_uint8_is_used_as_is():
    X = np.arange(4 * 5 * 6 * 3, dtype=np.uint8).reshape(4, 5, 6, 3)
    images = decoded(X)
    assert images[0].dtype == torch.uint8 and images[0].shape == (3, 5, 6)
    np.testing.assert_array_equal(images[2].numpy(), np.moveaxis(X[2], -1, 0))


def test_bool_is_black_and_white():
    X = np.zeros((2, 5, 5), dtype=bool)
    X[:, :, 1] = True
    assert first_row(X) == [0, 255, 0, 0, 0]


def test_uint16_is_read_over_its_full_range():
    assert first_row(RAMP16[None]) == [0, 1, 128, 255]
    assert first_row([RAMP16]) == [0, 1, 128, 255]
    assert first_row(RAMP16[None].astype(">u2")) == [0, 1, 128, 255]  # byte order does not matter


def test_dark_uint16_warns_that_it_comes_out_black():
    with pytest.warns(UserWarning, match="uint16 with values only up to 4095.*nearly black.*12-bit"):
        assert first_row(np.full((2, 4, 4), 4095, dtype=np.uint16)) == [16] * 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        decoded(RAMP16[None])  # full-range data: no warning


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint32, np.uint64])
def test_other_integers_in_0_255_are_8_bit_values(dtype):
    row = [0, 1, 127, 100] if dtype == np.int8 else [0, 1, 128, 255]
    X = np.array([[row] * 4] * 2, dtype=dtype)
    assert first_row(X) == row
    assert first_row(list(X)) == row


def test_python_ints_are_8_bit_values():
    assert first_row(np.array([[[0, 7, 255]] * 3] * 2)) == [0, 7, 255]  # int64


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64])
def test_negative_integers_are_refused(dtype):
    X = np.full((2, 4, 4), 10, dtype=dtype)
    X[1, 2, 3] = -5
    with pytest.raises(InvalidInputError, match=r"X holds negative pixel values .*min -5\).*rescale them to uint8"):
        decoded(X)
    with pytest.raises(InvalidInputError, match=r"X\[1\] holds negative pixel values"):
        decoded(list(X))


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.int64, np.uint32])
def test_integers_above_255_are_refused_not_wrapped(dtype):
    X = np.full((2, 4, 4), 4095, dtype=dtype)
    with pytest.raises(InvalidInputError, match=r"values up to 4095; integer pixels other than uint16 must be 0\.\.255"):
        decoded(X)
    with pytest.raises(InvalidInputError, match=r"X\[0\] holds .* up to 4095.*X\.astype\(np\.uint16\)"):
        decoded(list(X))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_floats_in_0_1_are_scaled_by_255(dtype):
    X = np.array([[[0.0, 0.25, 0.5, 1.0]] * 4] * 2, dtype=dtype)
    assert first_row(X) == [0, 64, 128, 255]
    assert first_row(list(X)) == [0, 64, 128, 255]


def test_floats_above_1_are_taken_as_0_255():
    X = np.array([[[0.0, 1.0, 16.0, 254.6]] * 4] * 2)
    assert first_row(X) == [0, 1, 16, 255]


def test_rounding_noise_is_tolerated_not_refused():
    X = np.array([[[-1e-7, 0.5, 1.0000001]] * 3] * 2, dtype=np.float32)
    assert first_row(X) == [0, 128, 255]
    assert first_row(np.array([[[-0.4, 255.4]] * 3] * 2)) == [0, 255]


def test_an_array_is_judged_as_a_whole_a_list_item_by_item():
    dark, bright = np.full((4, 4), 0.5), np.full((4, 4), 200.0)
    as_array = decoded(np.stack([dark, bright]))
    as_list = decoded([dark, bright])
    assert int(as_array[0][0, 0, 0]) == 0  # 0..255 for the whole array: 0.5 rounds to 0
    assert int(as_list[0][0, 0, 0]) == 128  # [0, 1] for this item alone
    assert int(as_array[1][0, 0, 0]) == int(as_list[1][0, 0, 0]) == 200


def test_normalised_floats_are_refused_with_the_reason():
    X = (np.random.RandomState(0).rand(2, 8, 8, 3) - 0.485) / 0.229  # ImageNet-normalised
    with pytest.raises(InvalidInputError, match=r"negative pixel values \(min -2.*looks already normalised.*\[0, 1\]"):
        decoded(X)
    with pytest.raises(InvalidInputError, match=r"X\[0\] holds negative pixel values.*looks already normalised"):
        decoded(list(X))
    with pytest.raises(InvalidInputError, match="looks already normalised"):
        decoded(torch.from_numpy(X).permute(0, 3, 1, 2))


def test_floats_above_255_are_refused_not_clipped():
    with pytest.raises(InvalidInputError, match=r"float pixel values up to 1000; floats must be in \[0, 1\] or 0\.\.255"):
        decoded(np.full((2, 4, 4), 1000.0))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_refused(bad):
    X = np.zeros((2, 4, 4))
    X[1, 0, 0] = bad
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        decoded(X)
    with pytest.raises(InvalidInputError, match=r"X\[1\] holds NaN or infinite"):
        decoded(list(X))


def test_non_pixel_dtypes_are_refused():
    with pytest.raises(InputModalityError, match="dtype complex128"):
        decoded(np.zeros((2, 4, 4), dtype=complex))
    with pytest.raises(InputModalityError, match=r"X\[0\] has dtype complex128"):
        decoded([np.zeros((4, 4), dtype=complex)])


# ---------------------------------------------------------------- 16-bit and float files


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16_bit_files_are_rescaled_not_clipped(tmp_path, ext):
    path = tmp_path / f"ramp.{ext}"
    Image.fromarray(RAMP16).save(path)
    assert Image.open(path).mode == "I;16"
    image = to_uint8_chw(path)
    assert image.dtype == torch.uint8 and image.shape == (3, 4, 4)
    assert image[:, 0].tolist() == [[0, 1, 128, 255]] * 3
    assert decoded([str(path)])[0][0, 0].tolist() == [0, 1, 128, 255]


def test_big_endian_16_bit_tiff(tmp_path):
    path = tmp_path / "ramp.tif"
    Image.frombytes("I;16B", (4, 4), RAMP16.astype(">u2").tobytes()).save(path)
    assert Image.open(path).mode == "I;16B"
    assert to_uint8_chw(path)[0, 0].tolist() == [0, 1, 128, 255]


def test_32_bit_integer_tiff_is_read_as_16_bit(tmp_path):
    path = tmp_path / "ramp.tif"
    Image.fromarray(RAMP16.astype(np.int32)).save(path)
    assert Image.open(path).mode == "I"
    assert to_uint8_chw(path)[0, 0].tolist() == [0, 1, 128, 255]
    Image.fromarray(RAMP16.astype(np.int32) * 4).save(path)
    with pytest.raises(InvalidInputError, match=r"X\[0\] \(.*ramp.tif'\) is a 'I' image with values 0\.\.262140"):
        decoded([str(path)])[0]


def test_float_tiff_follows_the_float_rule(tmp_path):
    path = tmp_path / "unit.tif"
    Image.fromarray((RAMP16 / 65535).astype(np.float32)).save(path)
    assert Image.open(path).mode == "F"
    assert to_uint8_chw(path)[0, 0].tolist() == [0, 1, 128, 255]
    Image.fromarray(np.full((4, 4), -1.5, dtype=np.float32)).save(path)
    with pytest.raises(InvalidInputError, match="unit.tif.*looks already normalised"):
        to_uint8_chw(path)


def test_16_bit_pil_images_in_memory():
    assert decoded([Image.fromarray(RAMP16)])[0][0, 0].tolist() == [0, 1, 128, 255]


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("shape", [(32, 32, 3), (32, 32, 4), (32, 32, 1), (5, 6, 3)])
def test_a_single_image_without_batch_axis_is_refused(shape):
    with pytest.raises(InvalidInputError, match=r"single image of shape .*add a batch axis \(X\[None\]\) or pass a list"):
        decoded(np.zeros(shape, dtype=np.uint8))
    with pytest.raises(InvalidInputError, match="single image"):
        decoded(torch.zeros(shape, dtype=torch.uint8))
    assert len(decoded(np.zeros(shape, dtype=np.uint8)[None])) == 1


def test_ambiguous_3d_arrays_are_batches():
    assert len(decoded(np.zeros((3, 32, 32), dtype=np.uint8))) == 3  # (3, H, W): 3 grayscale images
    assert len(decoded(np.zeros((4, 16, 3), dtype=np.uint8))) == 4  # at most 4 images 3 px wide: a batch
    assert decoded(np.zeros((10, 16, 3, 1), dtype=np.uint8))[0].shape == (3, 16, 3)  # the way out


@pytest.mark.parametrize("shape", [(2, 0, 8), (2, 8, 0), (2, 8, 0, 3), (2, 3, 0, 8)])
def test_zero_sized_images_in_an_array(shape):
    with pytest.raises(InvalidInputError, match=r"X has shape .*all its images are empty"):
        decoded(np.zeros(shape, dtype=np.uint8))


def test_zero_sized_images_in_a_list(tmp_path):
    with pytest.raises(InvalidInputError, match=r"X\[1\] is an empty image \(0x8 pixels\).*Drop it from X"):
        decoded([np.zeros((8, 8)), np.zeros((0, 8)), np.zeros((8, 8))])
    with pytest.raises(InvalidInputError, match=r"X\[0\] is an empty image \(8x0 pixels\)"):
        decoded([torch.zeros(3, 8, 0)])
    with pytest.raises(InvalidInputError, match=r"X\[1\] \(a PIL image\) is an empty image \(0x0 pixels\)"):
        decoded([Image.new("RGB", (4, 4)), Image.new("RGB", (0, 0))])
    good, empty = tmp_path / "good.png", tmp_path / "empty.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(good)
    empty.write_bytes(b"")
    with pytest.raises(InvalidInputError, match=r"X\[1\] \(.*empty.png'\) is an empty file \(0 bytes\)"):
        ADAPTER.check([str(good), str(empty)])


def test_list_items_with_no_channel_axis_are_refused():
    with pytest.raises(InvalidInputError, match=r"X\[0\] has shape \(8, 8, 2\).*C in 1, 3 or 4"):
        decoded([np.zeros((8, 8, 2))])


def test_a_single_pil_image_is_refused():
    with pytest.raises(TypeError, match=r"single PIL image.*pass \[X\]"):
        decoded(Image.new("RGB", (8, 8)))


# ---------------------------------------------------------------- the caller's data is never written


INPUTS = {
    "hwc array": lambda: np.random.RandomState(0).randint(0, 256, (4, 16, 16, 3)).astype(np.uint8),
    "chw array": lambda: np.random.RandomState(1).randint(0, 256, (4, 3, 16, 16)).astype(np.uint8),
    "gray array": lambda: np.random.RandomState(2).randint(0, 256, (4, 16, 16)).astype(np.uint8),
    "list of arrays": lambda: list(np.random.RandomState(3).randint(0, 256, (4, 16, 16, 3)).astype(np.uint8)),
    "tensor": lambda: torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8),
    "list of tensors": lambda: list(torch.randint(0, 256, (4, 16, 16, 3), dtype=torch.uint8)),
}


def snapshot(X):
    return [np.asarray(x).tobytes() for x in X]


@pytest.mark.parametrize("kind", INPUTS)
def test_decoded_images_never_share_memory_with_X(kind, monkeypatch):
    from torchvision.transforms.v2 import functional as F

    # torchvision's to_image copies today; the guarantee must not rest on that.
    monkeypatch.setattr(F, "to_image", lambda a: torch.from_numpy(np.atleast_3d(a)).permute(2, 0, 1))
    X = INPUTS[kind]()
    before = snapshot(X)
    for image in decoded(X):
        image.fill_(7)
    assert snapshot(X) == before


def test_in_place_augment_never_writes_the_callers_images():
    def augment(image):  # a careless user augment: in place, on images already at the input size
        image.zero_()
        return image

    for kind in ("hwc array", "list of arrays", "tensor"):
        X = INPUTS[kind]()
        before, calls = snapshot(X), TinyCNN.calls
        tiny_clf(augment=augment).fit(X, [0, 1, 0, 1])
        assert TinyCNN.calls > calls  # the augmented images went through the backbone
        assert snapshot(X) == before, kind


# ---------------------------------------------------------------- fit and predict


def test_fit_refuses_before_any_training():
    clf, calls = tiny_clf(), TinyCNN.calls
    X = (np.random.RandomState(0).rand(4, 16, 16, 3) - 0.5) / 0.25
    with pytest.raises(InvalidInputError, match="looks already normalised"):
        clf.fit(X, [0, 1, 0, 1])
    assert not hasattr(clf, "net_")
    with pytest.raises(InvalidInputError, match="single image"):
        clf.fit(np.zeros((16, 16, 3), dtype=np.uint8), [0] * 8 + [1] * 8)
    with pytest.raises(InvalidInputError, match=r"X\[2\] is an empty image"):
        clf.fit([np.zeros((16, 16))] * 2 + [np.zeros((0, 16))], [0, 1, 0])
    assert TinyCNN.calls == calls and not hasattr(clf, "net_")


def test_a_module_backbone_takes_a_ragged_list_of_images():
    images = [np.zeros((16, 16)), np.full((16, 12), 200, dtype=np.uint8), np.ones((20, 16, 3))]
    clf = tiny_clf().fit(images, [0, 1, 0])  # one height, other widths: once a numpy broadcast error
    assert clf.predict(images).shape == (3,)
    assert TransferClassifier(nn.Linear(3, 4), max_epochs=1).fit([[0.0, 1, 2], [3, 4, 5]], [0, 1]).n_features_in_ == 3


def test_predict_applies_the_same_rules():
    X = np.random.RandomState(0).randint(0, 256, (4, 16, 16)).astype(np.uint8)
    clf = tiny_clf().fit(X, [0, 1, 0, 1])
    assert clf.predict(X.astype(np.uint16) * 257).tolist() == clf.predict(X).tolist()
    assert clf.predict(X / 255.0).tolist() == clf.predict(X).tolist()
    with pytest.raises(InvalidInputError, match="single image"):
        clf.predict(np.zeros((16, 16, 3), dtype=np.uint8))
    with pytest.raises(InvalidInputError, match=r"int32 pixel values up to \d+; integer pixels other than uint16"):
        clf.predict(X.astype(np.int32) * 16)
    with pytest.raises(InvalidInputError, match="looks already normalised"):
        clf.predict(list((X - 128.0) / 64))


# ---------------------------------------------------------------- any array


DTYPES = ["u1", "?", "u2", ">u2", "i1", "i2", "i4", "i8", "u4", "f2", "f4", "f8"]


@st.composite
def image_arrays(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = (draw(st.integers(1, 8)),) + draw(hnp.array_shapes(min_dims=2, max_dims=3, min_side=0, max_side=6))
    in_range = st.integers(0, min(255, np.iinfo(dtype).max)) if dtype.kind in "iu" else st.floats(0, 1, width=8 * dtype.itemsize)
    elements = draw(st.sampled_from([hnp.from_dtype(dtype), in_range])) if dtype.kind != "b" else None
    return draw(hnp.arrays(dtype, shape, elements=elements))


@given(X=image_arrays(), as_list=st.booleans())
def test_any_array_decodes_to_uint8_or_is_refused(X, as_list):
    before = X.copy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dark uint16
            images = decoded(list(X) if as_list else X)
    except (InvalidInputError, InputModalityError) as exc:
        if X.dtype.kind == "b" or (X.dtype.kind == "u" and X.dtype.itemsize <= 2):  # every value is a pixel:
            assert "shape" in str(exc) or "empty" in str(exc), exc  # only the shape can be wrong
    else:
        assert len(images) == len(X)
        for image in images:
            assert image.dtype == torch.uint8 and image.ndim == 3 and image.shape[0] == 3
            assert image.shape[1] > 0 and image.shape[2] > 0
            image.fill_(7)  # what an in-place augment does
    assert X.dtype == before.dtype and X.tobytes() == before.tobytes()
