"""The installed sfm_node over real DDS: the navigation cloud is the filtered depth, only in metres.

The node runs without the metric branch, so its scale regime stays ``dro_units``: no cloud is published
until ``points_allow_unscaled`` is set at run time, and none after it is cleared again. The clouds that do
arrive are checked against the node's own depth + confidence of the same stamp run through the one
filter (dro_depth.geometry.cloud), against the synthetic ground truth (after one median scale: DRO units),
and for finiteness whenever ``is_dense`` is true.
"""
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='the ROS 2 runtime (rclpy) is not installed')

from dro_depth.geometry.cloud import CloudFilter, filter_points  # noqa: E402
from dro_depth.ros.conversions import image_to_float, pointcloud2_to_array, stamp_to_ns  # noqa: E402

FRAME_ID = 'points_camera_optical_frame'
H, W = 120, 160
PARAMS = {
    'device': 'cpu', 'cpu_threads': 1, 'width': 128, 'height': 96, 'iterations': 2, 'num_refs': 1,
    'metric.enabled': False, 'publish_points': True, 'points_decimation': 2, 'points_max_range': 1e4,
    'diagnostics_period': 0.25, 'pairing_queue_size': 3, 'publish_tf': False,
}


def _installed_executable():
    exe = Path(sys.prefix) / 'lib' / 'dro_depth' / 'sfm_node'
    if not exe.is_file():
        pytest.fail(f'{exe} is missing: run `make install` (pip install .) before the tests')
    return [sys.executable, str(exe)]


def test_cloud_is_filtered_depth_and_waits_for_metric_scale(ros_env):
    from dro_depth.data.synthetic import generate_sequence
    from dro_depth.ros.testing.client import SfmClient
    from dro_depth.ros.testing.process import NodeProcess

    seq = generate_sequence('indoor', seed=3, n_frames=40, height=H, width=W)
    sent = {}
    proc = NodeProcess(PARAMS, command=_installed_executable(), env=ros_env).start()
    client = SfmClient()

    def stream(n):
        for _ in range(n):
            i = len(sent) % len(seq.images)
            stamp = time.time_ns()
            client.camera.publish(seq.images[i], seq.K, stamp, FRAME_ID)
            sent[stamp] = i
            time.sleep(0.05)

    def stream_until(predicate, timeout):
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            stream(4)
        return predicate()

    try:
        assert client.wait_for_node(90), 'sfm_node did not come up:\n' + proc.log()[-3000:]
        outs = client.outputs
        assert stream_until(lambda: outs.count('depth') >= 4, 90), proc.log()[-3000:]
        assert outs.count('points') == 0, 'a cloud in DRO units reached the points topic'
        d = client.wait_diagnostics(lambda v: v.get('points_withheld') == 'dro_units', 10)
        assert d.get('points_withheld') == 'dro_units', d

        assert all(r.successful for r in client.set_parameters(points_allow_unscaled=True))
        assert stream_until(lambda: outs.count('points') >= 4, 60), proc.log()[-3000:]
        assert all(r.successful for r in client.set_parameters(points_allow_unscaled=False))
        stream(2)                                   # frames in flight under the old setting
        n_points, n_depth = outs.count('points'), outs.count('depth')
        assert stream_until(lambda: outs.count('depth') >= n_depth + 4, 30)
        assert outs.count('points') == n_points, 'points kept coming after points_allow_unscaled was cleared'
    finally:
        client.close()
        proc.stop()             # SIGINT: a clean exit removes the node's DDS shared-memory segment

    depths, confs = outs.by_stamp('depth'), outs.by_stamp('confidence')
    cfg = CloudFilter.from_values({**PARAMS, 'points_min_range': 0.1})
    within_raw, within_filtered = [], []
    for r in outs.get('points'):
        msg = r.msg
        stamp = stamp_to_ns(msg.header.stamp)
        assert stamp in sent and msg.header.frame_id == FRAME_ID and msg.height == 1
        assert [f.name for f in msg.fields][:3] == ['x', 'y', 'z']
        xyz, _ = pointcloud2_to_array(msg)
        if msg.is_dense:
            assert np.isfinite(xyz).all(), 'is_dense is true but the cloud holds NaN/inf'
        depth, conf = image_to_float(depths[stamp].msg), image_to_float(confs[stamp].msg)
        expected = filter_points(depth, seq.K, cfg, conf)
        np.testing.assert_allclose(xyz, expected.xyz, rtol=1e-6, atol=1e-6)
        gt = seq.depths[sent[stamp]]
        ok = np.isfinite(depth) & np.isfinite(gt)
        scale = np.median(gt[ok] / depth[ok])               # DRO units -> metres, one number per frame
        within_raw.append(np.mean(np.abs(depth[ok] * scale - gt[ok]) <= 0.10 * gt[ok]))
        z_gt = gt.ravel()[expected.index]
        within_filtered.append(np.mean(np.abs(xyz[:, 2] * scale - z_gt) <= 0.10 * z_gt))
    # the filter keeps the better part of the depth: at least as many points within 10 % of GT range
    assert np.mean(within_filtered) >= np.mean(within_raw), (within_filtered, within_raw)
