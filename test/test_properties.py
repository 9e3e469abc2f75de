"""Property-based tests (hypothesis) of the pure input path: every input either works or raises a
DroDepthError naming the problem; nothing else escapes, nothing half-works.

Profiles: ``ci`` (default, all properties together well under 20 s on 2 cores) and ``long``
(``HYPOTHESIS_PROFILE=long``, 20x the examples, for a soak before a release).
"""
import os
import pickle
import struct

import numpy as np
import pytest
import torch

hypothesis = pytest.importorskip('hypothesis', reason='hypothesis is a dev requirement')
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dro_depth.errors import DroDepthError  # noqa: E402
from dro_depth.geometry import IntrinsicsError, validate_intrinsics  # noqa: E402
from dro_depth.sfm.stamps import DuplicateStampError, StampOrder, seconds_to_ns  # noqa: E402

settings.register_profile('ci', max_examples=40, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile('long', max_examples=800, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'ci'))

weird_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                         st.sampled_from([0.0, -0.0, 1e-40, 1e-30, 1e300, 320.0, 500.0, 1.0]))


# ---------------------------------------------------------------------------------------------- intrinsics
@given(values=st.lists(weird_floats, min_size=9, max_size=9), width=st.integers(-2, 5000),
       height=st.integers(-2, 5000))
def test_intrinsics_are_valid_or_refused_with_intrinsics_error(values, width, height):
    try:
        K = validate_intrinsics(values, width, height)
    except IntrinsicsError:
        return
    assert np.all(np.isfinite(K)) and K[0, 0] > 0 and K[1, 1] > 0
    assert tuple(K[2]) == (0.0, 0.0, 1.0) and K[1, 0] == 0.0
    side = max(width, height)
    assert 0.005 * side <= K[0, 0] <= 1000 * side and abs(K[0, 1]) <= 1e-6 * K[0, 0]


# ---------------------------------------------------------------------------------------------- stamps
@given(ns=st.integers(0, 2 ** 63 - 1))
def test_seconds_convert_to_the_nearest_representable_ns(ns):
    seconds = ns / 1e9
    err = abs(seconds_to_ns(seconds) - ns)
    assert err <= max(1, int(ns * 2.0 ** -51))        # only float64 rounding of the input remains


@given(deltas=st.lists(st.integers(-3_000_000_000, 3_000_000_000), min_size=1, max_size=40),
       max_spans=st.integers(1, 4))
def test_stamp_order_accepts_a_stamp_at_most_once_per_timeline(deltas, max_spans):
    order = StampOrder(max_gap_ns=2_000_000_000, max_spans=max_spans)     # few spans: merging is exercised
    ns = 10 ** 18
    accepted = []
    for d in deltas:
        ns = max(0, ns + d)
        try:
            order.check(ns)
        except DuplicateStampError:
            assert any(lo <= ns <= hi for lo, hi in order.spans)   # refused only inside covered time
            continue
        assert ns not in accepted                                  # never accepted twice
        order.accept(ns)
        accepted.append(ns)
        assert len(order.spans) <= max_spans
        assert all(any(lo <= a <= hi for lo, hi in order.spans) for a in accepted)
        with pytest.raises(DuplicateStampError):
            order.check(ns)                           # the newest again: always a duplicate
        if not any(lo <= ns + 1 <= hi for lo, hi in order.spans):
            assert order.check(ns + 1) == ''          # 1 ns later: a distinct, valid frame
    order.new_timeline()                              # ROS time jumped back: stamps may come again
    assert all(order.check(a) == '' for a in accepted[:1])


# ---------------------------------------------------------------------------------------------- pairing
@given(events=st.lists(st.tuples(st.booleans(), st.integers(0, 12)), max_size=60),
       queue=st.integers(1, 5))
def test_pairing_accounts_for_every_image_exactly_once(events, queue):
    from dro_depth.ros.pairing import ExactTimePairer
    unpaired = []
    pairer = ExactTimePairer(queue, on_unpaired=lambda image, reason: unpaired.append(image))
    paired, images = [], []
    for k, (is_image, stamp) in enumerate(events):
        if is_image:
            image = ('image', stamp, k)
            images.append(image)
            pair = pairer.add_image(stamp, image)
        else:
            pair = pairer.add_info(stamp, ('info', stamp, k))
        if pair is not None:
            assert pair[0][1] == pair[1][1]                # same stamp, always
            paired.append(pair[0])
        assert pairer.pending_images <= queue and pairer.pending_infos <= queue
    waiting = pairer.pending_images
    assert len(paired) + len(unpaired) + waiting == len(images)     # each image: one fate
    assert len(set(paired) | set(unpaired)) == len(paired) + len(unpaired)


# ---------------------------------------------------------------------------------------------- images
ENCODINGS = ['rgb8', 'bgr8', 'mono8', 'rgba8', 'bgra8', 'RGB8', '32FC1', '16UC1', 'yuv422', '', 'bayer_rggb8']


@given(h=st.integers(0, 9), w=st.integers(0, 9), encoding=st.sampled_from(ENCODINGS),
       step=st.integers(-1, 40), extra=st.integers(-30, 30), bigendian=st.booleans(), seed=st.integers(0, 99))
def test_any_image_message_decodes_or_raises_a_conversion_error(h, w, encoding, step, extra, bigendian, seed):
    pytest.importorskip('rclpy')
    from sensor_msgs.msg import Image
    from dro_depth.ros.conversions import COLOR_ENCODINGS, ImageConversionError, image_to_float, image_to_rgb
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=bigendian, step=max(step, 0))
    msg.data = np.random.default_rng(seed).integers(0, 256, max(0, max(step, 0) * h + extra),
                                                     dtype=np.uint8).tobytes()
    decode = image_to_float if encoding.upper() == '32FC1' else image_to_rgb
    try:
        out = decode(msg)
    except ImageConversionError:
        return
    if decode is image_to_float:
        assert out.shape == (h, w) and out.dtype == np.float32
    else:
        channels = COLOR_ENCODINGS[encoding.lower()]
        assert out.shape == ((h, w) if channels == 1 else (h, w, 3)) and out.dtype == np.uint8


@given(h=st.integers(1, 8), w=st.integers(1, 8), encoding=st.sampled_from(['rgb8', 'bgr8', 'rgba8', 'bgra8']),
       padding=st.integers(0, 9), seed=st.integers(0, 99))
def test_colour_images_round_trip_with_any_padding(h, w, encoding, padding, seed):
    pytest.importorskip('rclpy')
    from dro_depth.ros.conversions import image_to_rgb, rgb_to_image
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_rgb(rgb_to_image(rgb, encoding, row_padding=padding)), rgb)


# ---------------------------------------------------------------------------------------------- camera info
@given(k=st.lists(weird_floats, min_size=9, max_size=9), p=st.lists(weird_floats, min_size=12, max_size=12),
       size=st.tuples(st.integers(0, 2000), st.integers(0, 2000)), binning=st.integers(0, 9),
       roi=st.tuples(st.integers(0, 2000), st.integers(0, 2000), st.integers(0, 2000), st.integers(0, 2000)),
       image=st.tuples(st.integers(1, 2000), st.integers(1, 2000)))
def test_any_camera_info_gives_a_plausible_camera_or_an_intrinsics_error(k, p, size, binning, roi, image):
    pytest.importorskip('rclpy')
    from sensor_msgs.msg import CameraInfo
    from dro_depth.ros.conversions import camera_from_info
    info = CameraInfo(width=size[0], height=size[1], k=k, p=p, binning_x=binning, binning_y=binning)
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = roi
    try:
        cam = camera_from_info(info, *image)
    except IntrinsicsError:
        return
    assert (cam.width, cam.height) == image
    validate_intrinsics(cam.K, cam.width, cam.height)          # what comes out passes the same checks


# ---------------------------------------------------------------------------------------------- estimator
@pytest.fixture(scope='module')
def estimator():
    from dro_depth.models.dro import build_dro
    from dro_depth.sfm.estimator import EstimatorConfig, SfmEstimator
    torch.manual_seed(0)
    return SfmEstimator(EstimatorConfig(width=32, height=32, iterations=1, device='cpu',
                                        max_input_pixels=64 * 64), model=build_dro())


images = st.one_of(
    st.tuples(st.integers(0, 70), st.integers(0, 70), st.sampled_from([None, 1, 3, 4])).map(
        lambda s: np.full(s[:2] if s[2] is None else s, 128, np.uint8)),
    st.sampled_from([None, 'image', [[1, 2], [3, 4]], torch.zeros(32, 32, 3, dtype=torch.uint8),
                     np.zeros((32, 32, 3), np.float32), np.zeros((32, 32, 3, 1), np.uint8)]))
stamps = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10 ** 12),
                   st.sampled_from([None, 'now', True]))


@settings(max_examples=int(os.environ.get('HYPOTHESIS_TRACK_EXAMPLES', '25')))
@given(image=images, k=st.lists(weird_floats, min_size=9, max_size=9), stamp=stamps)
def test_track_answers_or_raises_a_package_error(estimator, image, k, stamp):
    try:
        result = estimator.track(image, np.reshape(k, (3, 3)), stamp)
    except DroDepthError:
        return
    assert result.depth.shape == image.shape[:2] and result.stamp_ns >= 0
    assert np.all(np.isnan(result.depth) | (result.depth > 0))


# ---------------------------------------------------------------------------------------------- checkpoints
class _RunsCode:
    """Unpickling this creates a directory: the side effect a weights-only reader must never cause."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path):
    from dro_depth.models.checkpoints import CheckpointError, load_weights_file
    for name, save in (('evil.pt', lambda obj, path: torch.save(obj, path)),
                       ('evil.pkl', lambda obj, path: path.write_bytes(pickle.dumps(obj)))):
        marker = tmp_path / f'ran_{name}'
        path = tmp_path / name
        save({'state_dict': {'w': torch.zeros(2)}, 'cfg': _RunsCode(str(marker))}, path)
        with pytest.raises(CheckpointError, match='weights_only'):
            load_weights_file(path)
        assert not marker.exists(), f'loading {name} ran code'
    pickle.loads((tmp_path / 'evil.pkl').read_bytes())       # the same file really runs code when unpickled
    assert (tmp_path / 'ran_evil.pkl').is_dir()


def _safetensors_bytes():
    from safetensors.torch import save
    return save({'a': torch.arange(6, dtype=torch.float32).reshape(2, 3), 'b': torch.ones(4)},
                metadata={'version': '"x"'})


@given(cut=st.integers(0, 200),
       flips=st.lists(st.tuples(st.integers(0, 400), st.integers(1, 255)), max_size=4),
       kind=st.sampled_from(['safetensors', 'torch']))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_truncated_or_garbled_weights_raise_checkpoint_error(tmp_path, cut, flips, kind):
    import io
    from dro_depth.models.checkpoints import CheckpointError, load_weights_file
    if kind == 'safetensors':
        data = bytearray(_safetensors_bytes())
    else:
        buf = io.BytesIO()
        torch.save({'a': torch.ones(3)}, buf)
        data = bytearray(buf.getvalue())
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    data = bytes(data[:len(data) - cut]) if cut else bytes(data)
    path = tmp_path / f'w.{"safetensors" if kind == "safetensors" else "pt"}'
    path.write_bytes(data)
    try:
        contents, _ = load_weights_file(path)
    except CheckpointError:
        return
    assert isinstance(contents, dict)                 # an intact (or harmlessly changed) file loads


def test_safetensors_header_claiming_huge_sizes_is_refused(tmp_path):
    from dro_depth.models.checkpoints import CheckpointError, load_weights_file
    path = tmp_path / 'huge.safetensors'
    header = b'{"a":{"dtype":"F32","shape":[1000000000000],"data_offsets":[0,4000000000000]}}'
    path.write_bytes(struct.pack('<Q', len(header)) + header + b'\0' * 16)
    with pytest.raises(CheckpointError):
        load_weights_file(path)
