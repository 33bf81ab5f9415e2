"""``python -m benchmarks [--quick] [--only NAME ...] [--json PATH]``.

Without ``MONGODB_URI`` every benchmark gets a fresh local test server (fresh data directory),
stopped when it is done; with ``MONGODB_URI`` every benchmark uses a fresh database on that
deployment and drops it afterwards.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import shlex
import sys
import time
import traceback

from ._common import Context, Report, loadavg

BENCHMARKS = {
    "factory": "bench_factory",
    "restore": "bench_restore",
    "turns": "bench_turns",
    "concurrency": "bench_concurrency",
    "facade": "bench_facade",
    "memory": "bench_memory",
    "http": "bench_http",
    "migrate": "bench_migrate",
    "network": "bench_network",
    "encryption": "bench_encryption",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of mongodb-session-manager (see docs/benchmarks.md).",
    )
    parser.add_argument("--quick", action="store_true", help="short run (under a minute)")
    parser.add_argument(
        "--smoke", action="store_true", help="round-trip counts only: 2 repeats per case (the network group)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--json", default="benchmarks/results/latest.json", help="where to write the JSON results")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    args = parser.parse_args(argv)

    external = os.environ.get("MONGODB_URI", "").strip() or None
    report = Report()
    report.meta = {
        "command": "python -m benchmarks " + shlex.join(sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "server": "MONGODB_URI" if external else "local test server (SecantusDB), fresh per benchmark",
        "loadavg_start": loadavg(),
        "durations_s": {},
    }
    ctx = Context(quick=args.quick or args.smoke, report=report, external_uri=external, smoke=args.smoke)
    started = time.monotonic()
    try:
        for name in args.only or list(BENCHMARKS):
            module = importlib.import_module(f"{__package__}.{BENCHMARKS[name]}")
            print(f"running {name} ...", file=sys.stderr, flush=True)
            begun = time.monotonic()
            try:
                module.run(ctx)
            except KeyboardInterrupt:
                raise
            except Exception as error:
                report.errors[name] = f"{type(error).__name__}: {error}"
                traceback.print_exc()
            report.meta["durations_s"][name] = round(time.monotonic() - begun, 1)
    finally:
        ctx.stop_all()
    report.meta["total_s"] = round(time.monotonic() - started, 1)
    report.meta["loadavg_end"] = loadavg()
    print(report.render(markdown=args.markdown))
    report.write_json(args.json)
    print(f"\nresults written to {args.json} ({report.meta['total_s']} s)", file=sys.stderr)
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
