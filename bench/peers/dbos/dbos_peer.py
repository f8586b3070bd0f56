"""DBOS peer for bench/run: DBOS's exactly-once Kafka consumer (@DBOS.kafka_consumer) with a no-op
workflow, SQLite as the system database.

    dbos_peer.py --bootstrap B --topic T --count N [--db FILE] [--queue-poll-sec S]

Reads the topic from the beginning in a new consumer group until N workflows have completed
durably (counted in the system database, not just returned from), then prints on stdout
"completed N secs S" (S from DBOS.launch() returning to the Nth durable completion) and exits.
"""

import argparse
import os
import sqlite3
import sys
import tempfile
import threading
import time

from dbos import DBOS, DBOSConfig, KafkaMessage


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--db", help="SQLite system database file (default: a new temporary one)")
    ap.add_argument(
        "--queue-poll-sec",
        type=float,
        default=None,
        help="kafka_queue_polling_interval_sec (DBOS's default: 1.0)",
    )
    ap.add_argument("--timeout-sec", type=float, default=3600)
    a = ap.parse_args()
    db = a.db or os.path.join(tempfile.mkdtemp(prefix="dbos-peer-"), "dbos.sqlite")

    config: DBOSConfig = {
        "name": "kafka_once_bench",
        "system_database_url": f"sqlite:///{db}",
        "log_level": "WARNING",
    }
    if a.queue_poll_sec is not None:
        config["kafka_queue_polling_interval_sec"] = a.queue_poll_sec
    DBOS(config=config)

    ran = 0
    ran_lock = threading.Lock()
    all_ran = threading.Event()

    @DBOS.kafka_consumer(
        {
            "bootstrap.servers": a.bootstrap,
            "group.id": f"dbos-peer-{os.getpid()}-{time.time_ns()}",
            "auto.offset.reset": "earliest",
        },
        [a.topic],
    )
    @DBOS.workflow()
    def noop(msg: KafkaMessage) -> None:
        nonlocal ran
        with ran_lock:
            ran += 1
            if ran >= a.count:
                all_ran.set()

    DBOS.launch()
    start = time.monotonic()
    deadline = start + a.timeout_sec
    if not all_ran.wait(timeout=a.timeout_sec):
        print(f"dbos-peer: only {ran} of {a.count} workflows ran", file=sys.stderr)
        os._exit(1)
    # The body has run N times; wait until N workflows are recorded as completed.
    con = sqlite3.connect(db, timeout=30)
    while True:
        (done,) = con.execute(
            "SELECT COUNT(*) FROM workflow_status WHERE status = 'SUCCESS'"
        ).fetchone()
        if done >= a.count or time.monotonic() > deadline:
            break
        time.sleep(0.005)
    secs = time.monotonic() - start
    print(f"completed {done} secs {secs:.3f}", flush=True)
    print(f"read {done}", file=sys.stderr, flush=True)
    # DBOS.destroy() waits on its background threads; the result is out, so leave at once.
    os._exit(0 if done == a.count else 1)


if __name__ == "__main__":
    main()
