"""Benchmark: `mailbot run` as a cluster of 1, 2 and 3 nodes on one PostgreSQL store.

    .venv/bin/python bench/bench_cluster.py [--mails 300] [--nodes 1,2,3] [--takeovers 3]

The nodes are the real console script in subprocesses, each with its own working folder and
config file (tests/cluster_nodes.py, as tests/test_cluster.py runs them), sharing a real
PostgreSQL database (tests/servers.py), one Dovecot with two IMAP mailboxes and an aiosmtpd
relay; lease_seconds is 5 (`--lease-seconds`). For each cluster size, in the same run, with
a fresh database and a fresh Dovecot: the nodes are started and joined, then `--mails` mails
(tests/cluster_nodes.py `corpus`: a third to each IMAP mailbox, a third over LMTP to the
first two nodes, three in four verifiable) are delivered from a thread, and the wall time
from the first delivery until every mail is decided (and filed) is measured. Printed:
seconds, mails decided per second and the ratio to the 1-node run.

Then, on the largest cluster, `--takeovers` times: the node holding the lease of the IMAP
mailbox `keiyaku` is killed (SIGKILL) and the time until another node holds it is printed
(the killed node is restarted before the next round). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailbot.store import Store  # noqa: E402
from tests.cluster_nodes import (  # noqa: E402
    DOVECOT_USERS,
    SECRET,
    Cluster,
    corpus,
    decided,
    guarantee_events,
    lease_holder,
    scratch_folder,
    wait_for,
)
from tests.dns_server import dns_server  # noqa: E402
from tests.servers import Sink, create_database, dovecot_server, free_port, postgres_server  # noqa: E402


def one_size(nodes: int, args: argparse.Namespace, server: str, relay_port: int,
             resolver: str, takeovers: int) -> tuple[float, list[float]]:
    """Seconds from the first delivery to all decided with `nodes` nodes; the takeover
    times measured afterwards (`takeovers` rounds)."""
    mails = corpus(args.mails)
    url = create_database(server, f"cluster{nodes}")
    store = Store.open(url, secret=SECRET.encode())
    store.apply(guarantee_events(args.mails))
    root = scratch_folder(f"mailbot-bench-cluster{nodes}-")
    with dovecot_server(DOVECOT_USERS) as dovecot:
        cluster = Cluster(root, store_url=url, dovecot=dovecot, relay_port=relay_port,
                          resolver=resolver, nodes=nodes, lmtp_nodes=min(2, nodes),
                          lease_seconds=args.lease_seconds, claim_seconds=30)
        try:
            cluster.start()
            wait_for(lambda: cluster.ready(store.engine), 180, f"{nodes} node(s) joined",
                     cluster.logs)
            errors: list[BaseException] = []

            def deliver_all() -> None:
                try:
                    for mail in mails:
                        cluster.deliver(mail)
                except BaseException as exc:  # shown below
                    errors.append(exc)

            started = time.perf_counter()
            sender = threading.Thread(target=deliver_all, daemon=True)
            sender.start()
            wait_for(lambda: bool(errors) or decided(store.engine) == len(mails), 1800,
                     f"{len(mails)} mails decided", cluster.logs, poll=0.05)
            seconds = time.perf_counter() - started
            sender.join(timeout=60)
            if errors:
                raise SystemExit(f"delivery failed: {errors[0]!r}")
            times = [takeover(cluster, store) for _ in range(takeovers)]
        finally:
            cluster.stop()
            store.close()
    return seconds, times


def takeover(cluster: Cluster, store: Store) -> float:
    """Kill the holder of mailbox:keiyaku; seconds until another node holds it. The killed
    node is started again and waited for."""
    holder = lease_holder(store.engine, "mailbox:keiyaku")
    if holder is None:
        wait_for(lambda: lease_holder(store.engine, "mailbox:keiyaku") is not None, 60,
                 "a holder of mailbox:keiyaku", cluster.logs)
        holder = lease_holder(store.engine, "mailbox:keiyaku")
    victim = cluster.node(str(holder).split("#", 1)[0])
    killed = time.perf_counter()
    victim.kill()
    wait_for(lambda: (lease_holder(store.engine, "mailbox:keiyaku") or holder) != holder, 120,
             "another holder of mailbox:keiyaku", cluster.logs, poll=0.02)
    seconds = time.perf_counter() - killed
    new = lease_holder(store.engine, "mailbox:keiyaku")
    print(f"  killed {victim.name}: mailbox:keiyaku held by {new} after {seconds:.2f} s",
          flush=True)
    victim.start(cluster.env)
    wait_for(lambda: cluster.ready(store.engine), 180, f"{victim.name} back", cluster.logs)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=300)
    parser.add_argument("--nodes", default="1,2,3", help="cluster sizes, comma-separated")
    parser.add_argument("--takeovers", type=int, default=3)
    parser.add_argument("--lease-seconds", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(n) for n in args.nodes.split(",")]
    sink = Sink()
    relay = Controller(sink, hostname="127.0.0.1", port=free_port())
    relay.start()
    results: dict[int, float] = {}
    takeovers: list[float] = []
    try:
        with postgres_server() as server, dns_server() as dns:
            for nodes in sizes:
                print(f"{nodes} node(s), {args.mails} mails …", flush=True)
                rounds = args.takeovers if nodes == max(sizes) and nodes > 1 else 0
                results[nodes], times = one_size(nodes, args, server, relay.port,
                                                 dns.address, rounds)
                takeovers.extend(times)
    finally:
        relay.stop()
    base = results[sizes[0]]
    print(f"\n{args.mails} mails (IMAP ×2 + LMTP), PostgreSQL store, 1 PDF worker per node, "
          f"lease_seconds = {args.lease_seconds}\n")
    print(f"| nodes | s (first delivery → all decided) | mails/s | × {sizes[0]} node(s) |")
    print("|---:|---:|---:|---:|")
    for nodes in sizes:
        seconds = results[nodes]
        print(f"| {nodes} | {seconds:.1f} | {args.mails / seconds:.1f} | {base / seconds:.2f} |")
    if takeovers:
        print(f"\ntakeover of an IMAP mailbox after SIGKILL of its holder ({len(takeovers)} "
              f"× on {max(sizes)} nodes): median {statistics.median(takeovers):.2f} s, "
              f"max {max(takeovers):.2f} s (lease_seconds = {args.lease_seconds})")
    print(f"relay received {len(sink.accepted)} mails")


if __name__ == "__main__":
    main()
