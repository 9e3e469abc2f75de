"""`dro-depth eval-stereo --bag`: D1 / bad-k by hand, depth -> disparity through real bags, pairing, errors"""
import json

import numpy as np
import pytest

from dro_depth import cli
from dro_depth.evaluation.stereo_scores import DisparityAccumulator, frame_scores, interpolate_background
from dro_depth.stereo.calibration import StereoCalibration

pytest.importorskip('rosbags', reason='rosbags reads and writes the bags')

NAN = np.nan


def test_d1_and_bad_k_by_hand():
    gt = np.array([[100.0, 100.0, 10.0, 10.0, 2.0, NAN, 50.0, np.inf]], np.float32)
    pred = np.array([[104.0, 106.0, 13.5, 10.5, NAN, 5.0, 50.0, 1.0]], np.float32)
    # known pixels: errors 4 (> 3 px but only 4 % of 100: not a D1 outlier), 6 (6 %: outlier), 3.5 (35 %:
    # outlier), 0.5, 2 (missing prediction = the GT disparity; <= 3 px: no outlier), 0
    s = frame_scores(pred, gt)
    assert s['pixels'] == 6
    assert s['epe'] == pytest.approx(16 / 6)
    assert s['bad1'] == pytest.approx(100 * 4 / 6)
    assert s['bad2'] == pytest.approx(100 * 3 / 6)      # an error of exactly 2 px is not > 2
    assert s['bad3'] == pytest.approx(100 * 3 / 6)
    assert s['d1'] == pytest.approx(100 * 2 / 6)
    assert s['valid_pct'] == pytest.approx(100 * 5 / 6)


def test_frames_are_pooled_by_pixel_not_averaged():
    acc = DisparityAccumulator()
    acc.add(np.array([[20.0]]), np.array([[10.0]]))                       # 1 pixel, an outlier
    acc.add(np.full((1, 3), 10.0), np.full((1, 3), 10.0))                 # 3 exact pixels
    s = acc.summary()
    assert s['d1'] == pytest.approx(25.0) and s['epe'] == pytest.approx(2.5) and acc.frames == 2


def test_kitti_background_interpolation():
    d = np.array([[NAN, NAN, NAN, NAN, NAN, NAN],
                  [NAN, 5.0, NAN, NAN, 2.0, NAN],
                  [NAN, NAN, NAN, NAN, NAN, NAN],
                  [1.0, NAN, 3.0, 4.0, -1.0, NAN]], np.float32)
    out = interpolate_background(d)
    np.testing.assert_array_equal(out[1], [5, 5, 2, 2, 2, 2])    # gap -> the smaller side; ends -> nearest
    np.testing.assert_array_equal(out[0], out[1])               # rows above the first valid one copy it
    assert np.isnan(out[2]).all()                               # an empty row between valid rows stays empty
    np.testing.assert_array_equal(out[3], [1, 1, 3, 4, 4, 4])   # negative counts as missing


def test_disparity_from_depth_inverts_depth_from_disparity():
    calib = StereoCalibration(fx=200.0, fy=200.0, cx=50.0, cy=40.0, baseline=0.1, doffs=4.0)
    depth = np.array([[2.0, 0.5, 0.0, NAN, np.inf, 5.0]], np.float32)
    d = calib.disparity_from_depth(depth)
    np.testing.assert_allclose(d[0, :2], [200 * 0.1 / 2 - 4, 200 * 0.1 / 0.5 - 4])
    assert np.isnan(d[0, 2:]).all()          # 0, NaN, inf depth; and d = 4 - 4 = 0 is not > 0
    np.testing.assert_allclose(calib.depth_from_disparity(d)[0, :2], depth[0, :2], rtol=1e-6)


# ----------------------------------------------------------------------------------------- real bags
@pytest.fixture(scope='module')
def stereo():
    from dro_depth.data.synthetic import generate_stereo
    return generate_stereo('indoor', seed=3, n_frames=4, height=120, width=160, baseline=0.12)


def _oracle(st):
    """The renderer's own disparity as a prediction, found by the left image it belongs to."""
    table = {st.left.images[i].tobytes(): st.disparity[i] for i in range(len(st.left))}
    return 'rendered disparity', lambda left, right: table[left.tobytes()]


def _sgbm():
    from dro_depth.evaluation.stereo_eval import sgbm_disparity
    return 'sgbm', sgbm_disparity


@pytest.mark.parametrize('encoding', ['32FC1', '16UC1'])
def test_bag_ground_truth_matches_the_rendered_disparity(tmp_path, stereo, encoding):
    from dro_depth.data.bag_writer import write_stereo_bag
    from dro_depth.evaluation.stereo_bag_eval import StereoBagOptions, evaluate_stereo_bag
    bag = write_stereo_bag(stereo, tmp_path / 'bag', storage='mcap', depth_encoding=encoding)
    m = evaluate_stereo_bag(StereoBagOptions(bag=str(bag), out=str(tmp_path / 'out'), progress=False),
                            [_oracle(stereo), _sgbm()])
    oracle, sgbm = m['methods']
    assert m['frames_evaluated'] == 4 and m['frames_skipped'] == {}
    assert m['calibration']['baseline_m'] == pytest.approx(0.12)
    # depth -> disparity through the bag (fx of the left P, B from the right P) equals the renderer's
    # d = fx * B / Z: a wrong baseline sign, fx or formula cannot give this (16UC1: millimetre rounding)
    assert oracle['epe'] < (1e-4 if encoding == '32FC1' else 0.01) and oracle['d1'] == 0.0
    assert oracle['valid_pct'] == 100.0 and m['gt_pixels'] == np.isfinite(stereo.disparity).sum()
    # SGBM on the real images agrees with that ground truth except in its holes (left band, occlusions)
    assert sgbm['epe'] < 2.0 and sgbm['d1'] < 20.0 and sgbm['valid_pct'] > 75.0
    rows = json.loads((tmp_path / 'out' / 'per_frame.json').read_text())
    assert len(rows) == 4 and all(r['methods'][0]['epe'] < 0.01 for r in rows)
    assert (tmp_path / 'out' / 'error_maps.png').stat().st_size > 0


def test_kitti_mode_fills_holes_and_keeps_the_methods_own_density(tmp_path, stereo):
    from dro_depth.data.bag_writer import write_stereo_bag
    from dro_depth.evaluation.stereo_bag_eval import StereoBagOptions, evaluate_stereo_bag
    bag = str(write_stereo_bag(stereo, tmp_path / 'bag'))
    plain, kitti = (evaluate_stereo_bag(StereoBagOptions(bag=bag, out=str(tmp_path / f'o{k}'), kitti=k,
                                                         n_error_maps=0, progress=False),
                                        [_sgbm()])['methods'][0]
                    for k in (False, True))
    assert plain['valid_pct'] < 95 and kitti['valid_pct'] == pytest.approx(plain['valid_pct'])
    assert kitti['epe'] < 0.6 * plain['epe'] and kitti['d1'] < plain['d1']


def test_cli_report_overwrite_and_swapped_cameras(tmp_path, stereo, capsys):
    from dro_depth.data.bag_writer import write_stereo_bag
    bag = str(write_stereo_bag(stereo, tmp_path / 'bag'))
    out = str(tmp_path / 'report')
    args = ['eval-stereo', '--bag', bag, '--methods', 'sgbm', '--out', out, '--no-progress']
    assert cli.main(args) == 0
    metrics = json.loads((tmp_path / 'report' / 'metrics.json').read_text())
    assert metrics['frames_evaluated'] == 4 and metrics['methods'][0]['name'].startswith('OpenCV SGBM')
    assert '| OpenCV SGBM' in (tmp_path / 'report' / 'summary.md').read_text()
    capsys.readouterr()
    assert cli.main(args) == 2                                  # exists, no --overwrite
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith('dro-depth eval-stereo: error:') and '--overwrite' in lines[-1]
    # left and right swapped: the baseline from the "right" P is negative -> every frame refused
    code = cli.main(args[:3] + ['--left-topic', '/right/image', '--right-topic', '/left/image',
                                '--left-info', '/right/camera_info', '--right-info', '/left/camera_info',
                                '--depth-topic', '/right/depth', '--methods', 'sgbm', '--out', out + '2',
                                '--no-progress'])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith('dro-depth eval-stereo: error:')
    assert "'bad_calibration': 4" in err[-1]
    assert 'Traceback' not in '\n'.join(err) and not (tmp_path / 'report2').exists()


def test_a_topic_the_bag_lacks_is_one_line_and_exit_2(tmp_path, stereo, capsys):
    from dro_depth.data.bag_writer import write_stereo_bag
    bag = str(write_stereo_bag(stereo, tmp_path / 'bag'))
    code = cli.main(['eval-stereo', '--bag', bag, '--depth-topic', '/left/gt_depth', '--methods', 'sgbm',
                     '--out', str(tmp_path / 'o'), '--no-progress'])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith('dro-depth')]
    assert code == 2 and 'Traceback' not in err and len(lines) == 1
    assert lines[0].startswith('dro-depth eval-stereo: error:') and "'/left/gt_depth'" in lines[0]
    assert '/left/depth (sensor_msgs/msg/Image)' in lines[0]      # lists what the bag has
    with pytest.raises(SystemExit) as e:                         # argparse: a method that does not exist
        cli.main(['eval-stereo', '--bag', bag, '--methods', 'default,magic'])
    assert e.value.code == 2 and 'magic' in capsys.readouterr().err.strip().splitlines()[-1]


def _write_tweaked_bag(path, st):
    """Frame 0 complete; 1: right image stamped 1 ns later; 2: no depth; 3: left camera_info not rectified;
    then a second left image with frame 0's stamp."""
    from dro_depth.data.bag_writer import BagWriter
    from dro_depth.data.sequence import stamp_to_ns
    K = st.left.K
    P_right = np.concatenate([K, np.zeros((3, 1))], 1)
    P_right[0, 3] = -K[0, 0] * st.baseline
    tilt = np.array([[1.0, 0, 0], [0, np.cos(0.1), -np.sin(0.1)], [0, np.sin(0.1), np.cos(0.1)]])
    stamps = [stamp_to_ns(float(s)) for s in st.left.stamps]
    with BagWriter(path) as bag:
        for i, ns in enumerate(stamps):
            left_frame = 'camera_left_optical_frame'
            bag.write_camera_info('/left/camera_info', ns, K, 160, 120, left_frame,
                                  R=tilt if i == 3 else None)
            bag.write_camera_info('/right/camera_info', ns, K, 160, 120, 'camera_right_optical_frame',
                                  P=P_right)
            bag.write_image('/left/image', ns, st.left.images[i], 'rgb8', left_frame)
            bag.write_image('/right/image', ns + (i == 1), st.right.images[i], 'rgb8',
                            'camera_right_optical_frame')
            if i != 2:
                bag.write_depth('/left/depth', ns, st.left.depths[i], left_frame)
        bag.write_image('/left/image', stamps[0], st.left.images[1], 'rgb8', 'camera_left_optical_frame')


def test_mismatched_stamps_and_bad_frames_are_skipped_and_counted(tmp_path, stereo):
    from dro_depth.evaluation.stereo_bag_eval import StereoBagOptions, evaluate_stereo_bag
    _write_tweaked_bag(tmp_path / 'bag', stereo)
    m = evaluate_stereo_bag(StereoBagOptions(bag=str(tmp_path / 'bag'), out=str(tmp_path / 'out'),
                                             n_error_maps=0, progress=False), [_oracle(stereo)])
    assert m['frames_in_bag'] == 5 and m['frames_evaluated'] == 1
    assert m['frames_skipped'] == {'unpaired: no right image': 1, 'unpaired: no depth': 1,
                                   'bad_calibration': 1, 'duplicate_stamp': 1}
    assert m['unmatched_messages'] == {'/right/image': 1}
    assert 'not rectified' in m['skip_examples']['bad_calibration']
    assert m['methods'][0]['epe'] < 1e-4     # the frame kept is frame 0 with its images, not the duplicate
