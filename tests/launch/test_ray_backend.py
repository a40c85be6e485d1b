"""``--backend ray``: training on a local two-node Ray cluster kept on 127.0.0.1, with a
killed actor, a removed node and a resume; the message when Ray is missing.

The cluster (``ray.cluster_utils.Cluster``: a head and a worker node, one CPU each, token
authentication on) lives in this test process; the training runs as a user would start
it, ``python -m launch.train --backend ray --ray-address HEAD``, in a subprocess.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from launch.impala.config import ConfigError, config_from_preset
from launch.impala.ray_pool import check_reachable, is_loopback_address
from tests.launch.helpers import REPO, TINY, LiveProcess, metrics, run

pytestmark = pytest.mark.timeout(240)

HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed (pip install '.[ray]')")
PLACED = r"actor (\d+) \(pid (\d+)\) runs on node ([0-9a-f]+)"
NODE_ENV = {"node_ip_address": "127.0.0.1", "num_cpus": 1, "object_store_memory": 80 * 2**20}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A head and a worker node on 127.0.0.1 with token authentication."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray's single-machine mode: no routable address
        patch.setenv("RAY_AUTH_MODE", "token")
        patch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(16))  # inherited by the nodes and the learner
        from ray.cluster_utils import Cluster

        ray_cluster = Cluster(initialize_head=True, head_node_args={**NODE_ENV, "include_dashboard": False})
        try:
            ray_cluster.add_node(**NODE_ENV)
            ray_cluster.wait_for_nodes(timeout=60)
            yield ray_cluster
        finally:
            ray_cluster.shutdown()


def descendants(root: int) -> set[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


def _address(text: str) -> str:
    host, port = text.split(":")
    raw = bytes.fromhex(host)
    raw = b"".join(raw[index:index + 4][::-1] for index in range(0, len(raw), 4))  # kernel byte order per word
    return f"{ipaddress.ip_address(raw)}:{int(port, 16)}"


def bound_sockets(pids: set[int]) -> list[tuple[str, int]]:
    """``(local address, pid)`` of every listening TCP and bound UDP socket of ``pids``."""
    owner: dict[str, int] = {}
    for pid in pids:
        try:
            for descriptor in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{descriptor}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    owner[target[8:-1]] = pid
        except OSError:
            continue
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            listening = fields[3] == "0A" if table.startswith("tcp") else fields[3] == "07"
            if listening and fields[9] in owner:
                found.append((_address(fields[1]), owner[fields[9]]))
    return found


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.rsplit(":", 1)[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def placements(process: LiveProcess) -> dict[int, tuple[int, str]]:
    """Latest ``actor index -> (pid, node id)`` reported by the run so far."""
    return {int(index): (int(pid), node) for index, pid, node in re.findall(PLACED, process.output)}


def start_run(cluster: Any, tmp_path: Path, *args: str) -> LiveProcess:
    return LiveProcess("launch.train", *TINY, "--backend", "ray", "--ray-address", cluster.address,
                       "--runs-root", str(tmp_path), "--run-name", "run", *args)


@needs_ray
def test_actors_on_both_nodes_survive_a_killed_actor_stop_and_resume(cluster: Any, tmp_path: Path) -> None:
    process = start_run(cluster, tmp_path, "--total-steps", "100000000", "--checkpoint-interval-s", "1000")
    try:
        placed = process.wait_for_count(PLACED, 2, timeout=120) and placements(process)
        nodes = {cluster.head_node.node_id, *(node.node_id for node in cluster.worker_nodes)}
        assert {node for _, node in placed.values()} == nodes, process.output  # one actor per node
        process.wait_for(r" [1-9][\d,]*/[\d,]+ steps", timeout=90)
        sockets = bound_sockets(descendants(os.getpid()))
        owners = {pid for _, pid in sockets}
        assert {process.process.pid, *(pid for pid, _ in placed.values())} <= owners, sockets  # learner, actors
        assert len(owners) >= 6, sockets  # ... and the GCS, both raylets, the runtime-env agents
        assert [entry for entry in sockets if not is_loopback(entry[0])] == []
        victim = placed[0][0]
        os.kill(victim, signal.SIGKILL)
        process.wait_for(rf"actor 0 \(pid {victim} on node [0-9a-f]+\) died \(.*\); replacing it \(restart 1 of",
                         timeout=60)
        process.wait_for(rf"actor 0 \(pid (?!{victim}\))\d+\) runs on node", timeout=120)
        progress = r" [1-9][\d,]*/[\d,]+ steps"
        process.wait_for_count(progress, len(re.findall(progress, process.output)) + 2, timeout=90)  # still learning
        process.process.send_signal(signal.SIGTERM)  # ray.init must not have replaced the learner's handler
        code = process.finish(timeout=90)
    finally:
        process.kill()
    assert code == 0, process.output
    assert "stopped by SIGTERM" in process.output
    records = metrics(tmp_path / "run")
    assert records[-1]["actor_restarts"] == 1
    stopped_at = records[-1]["step"]
    resumed = run("launch.train", "--resume", str(tmp_path / "run"), "--total-steps", str(stopped_at + 800),
                  timeout=180)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming at step {stopped_at:,}" in resumed.stdout
    assert f"finished {stopped_at + 800:,} steps" in resumed.stdout
    assert metrics(tmp_path / "run")[-1]["step"] == stopped_at + 800


@needs_ray
def test_a_removed_node_leaves_the_run_going_with_fewer_actors(cluster: Any, tmp_path: Path) -> None:
    extra = cluster.add_node(**NODE_ENV)
    try:
        cluster.wait_for_nodes(timeout=60)
        process = start_run(cluster, tmp_path, "--num-actors", "3", "--total-steps", "100000000")
        try:
            placed = process.wait_for_count(PLACED, 3, timeout=120) and placements(process)
            assert extra.node_id in {node for _, node in placed.values()}, process.output
            process.wait_for(r" [1-9][\d,]*/[\d,]+ steps", timeout=90)
            cluster.remove_node(extra)
            extra = None
            process.wait_for(r"died \(.*\); replacing it", timeout=90)
            process.wait_for(r"no CPU free in the Ray cluster for 1 actor\(s\); continuing with 2 actor\(s\)",
                             timeout=60)
            progress = r" [1-9][\d,]*/[\d,]+ steps"
            process.wait_for_count(progress, len(re.findall(progress, process.output)) + 2, timeout=90)
            process.process.send_signal(signal.SIGTERM)
            code = process.finish(timeout=90)
        finally:
            process.kill()
    finally:
        if extra is not None:
            cluster.remove_node(extra)
    assert code == 0, process.output
    assert "stopped by SIGTERM" in process.output
    assert metrics(tmp_path / "run")[-1]["actor_restarts"] == 1


@needs_ray
def test_without_an_address_a_private_loopback_instance_runs_and_goes_away(tmp_path: Path) -> None:
    result = run("launch.train", *TINY, "--backend", "ray", "--total-steps", "800", "--runs-root", str(tmp_path),
                 "--run-name", "run", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ray cluster at a private local instance (127.0.0.1): 1 node(s)" in result.stdout
    assert re.search(PLACED, result.stdout) and "finished 800 steps" in result.stdout  # the 2nd may come too late
    assert metrics(tmp_path / "run")[-1]["step"] == 800


@needs_ray
def test_a_driver_without_the_cluster_token_is_refused(cluster: Any, tmp_path: Path) -> None:
    environment = {**os.environ, "RAY_AUTH_TOKEN": secrets.token_hex(16)}  # not the cluster's token
    result = subprocess.run([sys.executable, "-m", "launch.train", *TINY, "--backend", "ray", "--ray-address",
                             cluster.address, "--runs-root", str(tmp_path)], cwd=REPO, env=environment,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"cannot join the Ray cluster at ray_address='{cluster.address}'" in result.stdout
    assert "set RAY_AUTH_MODE=token and its token" in result.stdout
    assert "runs on node" not in result.stdout  # no actor was started


def test_backend_ray_without_ray_says_how_to_install_it(tmp_path: Path) -> None:
    arguments = [*TINY, "--backend", "ray", "--runs-root", str(tmp_path)]
    hide_ray = f"import sys; sys.modules['ray'] = None; from launch.train import cli; sys.exit(cli({arguments!r}))"
    result = subprocess.run([sys.executable, "-c", hide_ray], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--backend ray needs Ray, which is not installed" in result.stderr
    assert "pip install 'relational-rl[ray]'" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_ray_address_checks() -> None:
    assert is_loopback_address(None) and is_loopback_address("127.0.0.1:6379") and is_loopback_address("localhost:1")
    assert not is_loopback_address("10.0.0.5:6379")
    with pytest.raises(ConfigError, match="ray_address must be HOST:PORT"):
        check_reachable("10.0.0.5")
    with socket.socket() as unused:  # a loopback port that nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(ConfigError, match="nothing answers at ray_address='127.0.0.1:"):
        check_reachable(f"127.0.0.1:{port}", timeout=2)
    with pytest.raises(ConfigError, match="ray_address is only used with backend 'ray'"):
        config_from_preset(None, ray_address="127.0.0.1:6379")
    with pytest.raises(ConfigError, match="ray_max_inflight must be an integer >= 1, got 0"):
        config_from_preset(None, backend="ray", ray_max_inflight=0)
    with pytest.raises(ConfigError, match="ray_actor_cpus must be a finite number > 0, got 0"):
        config_from_preset(None, backend="ray", ray_actor_cpus=0)
