"""A Ray cluster of several nodes on this machine for the tests, in a process of its own
(Ray reads its environment once, when imported: the test process never imports it).

    python -m tests.ray_cluster NODES CPUS_PER_NODE

prints ``address HOST:PORT`` once every node is up, then keeps the cluster until its
standard input closes. Nodes bind to 127.0.0.1 (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes
Ray keep the loopback address instead of the machine's own), built with Ray's own test
utility ``ray.cluster_utils.Cluster``.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    nodes, cpus = int(sys.argv[1]), int(sys.argv[2])
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": cpus, "include_dashboard": False, "node_ip_address": "127.0.0.1"})
    for _ in range(nodes - 1):
        c.add_node(num_cpus=cpus, node_ip_address="127.0.0.1")
    c.wait_for_nodes()
    print(f"address {c.address}", flush=True)
    try:
        sys.stdin.read()
    finally:
        c.shutdown()


if __name__ == "__main__":
    main()
