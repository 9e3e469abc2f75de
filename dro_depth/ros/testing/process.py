"""Running ``sfm_node`` as a separate process (what ``ros2 run`` / launch do), for the demo, benchmark
and tests on machines without the ros2 CLI.

    with NodeProcess({'iterations': 4}, remappings={'image': '/cam/image'}) as proc:
        ...                                     # talk to it over ROS
    proc.returncode                             # 0 after a clean SIGINT shutdown
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import yaml

from dro_depth.ros.transport import ensure_fastdds_profile

__all__ = ['node_executable', 'NodeProcess', 'write_params_file']


def node_executable() -> List[str]:
    """The command that runs sfm_node: the installed ``<prefix>/lib/dro_depth/sfm_node`` (where
    ``pip install .`` and colcon put it), else ``python -m dro_depth.ros.sfm_node``."""
    exe = Path(sys.prefix) / 'lib' / 'dro_depth' / 'sfm_node'
    if exe.is_file():
        return [sys.executable, str(exe)]
    return [sys.executable, '-m', 'dro_depth.ros.sfm_node']


def write_params_file(path: str | Path, params: Mapping[str, Any], node_name: str = 'sfm_node') -> Path:
    """Write ``{node_name: {ros__parameters: params}}`` as YAML (a ``--params-file``)."""
    path = Path(path)
    path.write_text(yaml.safe_dump({node_name: {'ros__parameters': dict(params)}}, sort_keys=False))
    return path


class NodeProcess:
    """``sfm_node`` in a subprocess with a params file, remappings and its output in a log file.

    Args:
        params: parameter values (written to a params file passed with ``--params-file``).
        remappings: ``{from: to}`` topic remappings (``-r from:=to``).
        params_file: use this file instead of writing one (``params`` then go as ``-p`` overrides).
        extra_args: more ``--ros-args`` arguments (e.g. ``['--log-level', 'debug']``).
        env: environment overrides (ROS_DOMAIN_ID, ...); the Fast DDS profile is set when unset.
        command: the command to run (default :func:`node_executable`).
        workdir: where the params and log files go (default: a temporary directory).
    """

    def __init__(self, params: Optional[Mapping[str, Any]] = None,
                 remappings: Optional[Mapping[str, str]] = None, params_file: Optional[str | Path] = None,
                 extra_args: Optional[List[str]] = None,
                 env: Optional[Mapping[str, str]] = None, command: Optional[List[str]] = None,
                 workdir: Optional[str | Path] = None) -> None:
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix='sfm_node_')
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = ['--ros-args']
        if params_file is None:
            self.params_file = write_params_file(self.workdir / 'params.yaml', params or {})
            args += ['--params-file', str(self.params_file)]
        else:
            self.params_file = Path(params_file)
            args += ['--params-file', str(self.params_file)]
            for k, v in (params or {}).items():
                args += ['-p', f'{k}:={json.dumps(v)}']      # JSON scalars are valid YAML
        for src, dst in (remappings or {}).items():
            args += ['-r', f'{src}:={dst}']
        args += list(extra_args or [])
        self.command = list(command or node_executable()) + args
        self.env: Dict[str, str] = dict(os.environ)
        self.env.update(env or {})
        self.env.setdefault('PYTHONUNBUFFERED', '1')
        ensure_fastdds_profile(self.env)
        self.log_path = self.workdir / 'sfm_node.log'
        self.proc: Optional[subprocess.Popen] = None
        self.returncode: Optional[int] = None

    def start(self) -> 'NodeProcess':
        self._log = open(self.log_path, 'wb')
        self.proc = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors='replace') if self.log_path.exists() else ''

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> Optional[int]:
        """Send ``sig`` (SIGINT, like Ctrl-C) and wait; SIGKILL after ``timeout``. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.returncode = self.proc.returncode
        self._log.close()
        return self.returncode

    def __enter__(self) -> 'NodeProcess':
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
