"""A ROS endpoint that drives ``sfm_node`` from another process: camera out, outputs in, parameters.

It owns its own rclpy context and spins it on a background thread, so a script (demo, benchmark,
tests) can publish frames and wait for outputs with plain, bounded calls:

    with SfmClient() as client:
        client.wait_for_node(60)
        client.camera.publish(rgb, K, stamp_ns)
        client.outputs.wait(lambda o: o.count('depth') >= 1, 10)
        client.set_parameters(iterations=4)
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional

import rclpy
from rcl_interfaces.msg import SetParametersResult
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from .collector import OutputCollector
from dro_depth.ros.diagnostics import status_values
from .player import CameraStreamer, wait_for
from dro_depth.ros.transport import ensure_fastdds_profile

__all__ = ['SfmClient']


class SfmClient:
    """Publisher of a camera stream + collector of sfm_node's outputs, in its own rclpy context.

    Args:
        node_name: fully qualified name of the sfm_node to talk to (for parameters and diagnostics).
        namespace: namespace of the node's output topics.
        image_topic, info_topic: where to publish the camera stream.
        topics: outputs to collect (default: all).
        keep: messages kept per output.
        camera_reliability: QoS reliability of the camera publishers.
    """

    def __init__(self, node_name: str = '/sfm_node', namespace: str = '', image_topic: str = 'image',
                 info_topic: str = 'camera_info', topics: Optional[List[str]] = None, keep: int = 1000,
                 camera_reliability: str = 'reliable', client_name: str = 'sfm_client') -> None:
        ensure_fastdds_profile()
        self.node_name = node_name
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(client_name, context=self.context)
        self.camera = CameraStreamer(self.node, image_topic, info_topic, reliability=camera_reliability)
        self.outputs = OutputCollector(self.node, namespace, topics, keep)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name='sfm-client-spin', daemon=True)
        self._thread.start()
        self._set_client = self.node.create_client(SetParameters, f'{node_name}/set_parameters')
        self._get_client = self.node.create_client(GetParameters, f'{node_name}/get_parameters')

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except Exception:   # noqa: BLE001 - shutting down the context ends the spin
            pass

    # ------------------------------------------------------------------ discovery
    def wait_for_node(self, timeout: float = 60.0) -> bool:
        """Wait until the node subscribes to the camera and publishes its outputs (it is ready)."""
        deadline = time.monotonic() + timeout
        if not self.camera.wait_for_subscribers(timeout):
            return False
        remaining = max(deadline - time.monotonic(), 0.0)
        return wait_for(lambda: self.outputs.publishers_ready(self.node), remaining)

    # ------------------------------------------------------------------ parameters
    def _call(self, client: Any, request: Any, timeout: float) -> Any:
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f'service {client.srv_name} not available within {timeout} s')
        future = client.call_async(request)
        if not wait_for(future.done, timeout):
            raise TimeoutError(f'service {client.srv_name} did not answer within {timeout} s')
        return future.result()

    def set_parameters(self, timeout: float = 10.0, **values: Any) -> List[SetParametersResult]:
        """``ros2 param set`` for each value; returns the node's results (successful, reason)."""
        request = SetParameters.Request(
            parameters=[Parameter(name, value=value).to_parameter_msg() for name, value in values.items()])
        return list(self._call(self._set_client, request, timeout).results)

    def get_parameters(self, *names: str, timeout: float = 10.0) -> Dict[str, Any]:
        """``ros2 param get`` for ``names``."""
        response = self._call(self._get_client, GetParameters.Request(names=list(names)), timeout)
        return {name: Parameter.from_parameter_msg(
            _as_msg(name, value)).value for name, value in zip(names, response.values)}

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self) -> Dict[str, str]:
        """Key/values of the newest diagnostics status of the node ({} before the first)."""
        msg = self.outputs.latest('/diagnostics')
        if msg is None:
            return {}
        for status in msg.status:
            if status.name.startswith(self.node_name.strip('/').split('/')[-1]):
                values = status_values(status)
                values['_level'] = int.from_bytes(status.level, 'little') if isinstance(status.level, bytes) \
                    else int(status.level)
                values['_message'] = status.message
                values['_stamp_ns'] = str(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
                return values
        return {}

    def wait_diagnostics(self, predicate: Callable[[Dict[str, str]], bool], timeout: float) -> Dict[str, str]:
        """Wait (bounded) for a diagnostics message whose values satisfy ``predicate``; returns the newest
        values either way."""
        self.outputs.wait(lambda o: bool(self.diagnostics()) and predicate(self.diagnostics()), timeout)
        return self.diagnostics()

    # ------------------------------------------------------------------ shutdown
    def close(self) -> None:
        self._executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(5.0)

    def __enter__(self) -> 'SfmClient':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _as_msg(name: str, value: Any) -> Any:
    from rcl_interfaces.msg import Parameter as ParameterMsg
    return ParameterMsg(name=name, value=value)
