"""``python -m bench``: the benchmark's command line (``make bench`` / ``make bench-quick``).

    python -m bench                 # full: scale 1, 3 rounds, 1,000,000-point memory probe
    python -m bench --quick         # under 3 minutes: scale 0.05, one round, fewer requests
    python -m bench --quick --profile --questions Q1,Q3   # plus a py-spy profile of Q1 and Q3

PostgreSQL: ``COLLABX_BENCH_POSTGRES_URL`` (default postgresql+asyncpg://postgres@127.0.0.1:5432/
postgres, the server); the benchmark creates its own database there and drops it at the end.
Writes ``bench/results.json`` and ``bench/RESULTS.md`` (the last run).
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.driver import QUESTIONS, Config, full_config, quick_config, run


def parse(argv: list[str] | None = None) -> Config:
    """The run's Config from the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the quick preset (bench-quick)")
    parser.add_argument("--scale", type=float, help="dataset scale (1 = 648,000 points)")
    parser.add_argument("--rounds", type=int, help="measured rounds per question")
    parser.add_argument("--concurrency", type=int, help="concurrent requests (default 16)")
    parser.add_argument("--seed", type=int, help="dataset seed")
    parser.add_argument(
        "--requests-factor",
        type=float,
        default=1.0,
        help="multiply every planned request count (e.g. 0.25 for a shorter run)",
    )
    parser.add_argument(
        "--questions", help=f"comma-separated subset of {','.join(QUESTIONS)} (default: all)"
    )
    parser.add_argument("--export-points", type=int, help="points per Q4 export")
    parser.add_argument("--memory-export-points", type=int, help="points of the memory probe")
    parser.add_argument("--profile", action="store_true", help="py-spy profile of Q1 and Q3")
    parser.add_argument("--results", type=Path, help="results.json path")
    parser.add_argument("--report", type=Path, help="RESULTS.md path")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the API server (e.g. COLLABX_MAX_PAGE_SIZE=1000)",
    )
    args = parser.parse_args(argv)
    config = quick_config() if args.quick else full_config()
    overrides: dict[str, Any] = {}
    for name in ("scale", "rounds", "concurrency", "seed", "export_points"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.memory_export_points is not None:
        overrides["memory_export_points"] = args.memory_export_points
    if args.questions:
        chosen = tuple(q.strip() for q in args.questions.split(",") if q.strip())
        unknown = [q for q in chosen if q not in QUESTIONS]
        if unknown:
            parser.error(f"unknown question(s) {unknown}; known: {', '.join(QUESTIONS)}")
        overrides["questions"] = chosen
    if args.requests_factor != 1.0:
        overrides["plans"] = {
            question: replace(
                plan,
                api=max(1, round(plan.api * args.requests_factor)),
                floor=max(1, round(plan.floor * args.requests_factor)),
                warmup=round(plan.warmup * args.requests_factor),
            )
            for question, plan in config.plans.items()
        }
    if args.results is not None:
        overrides["results_path"] = args.results
    if args.report is not None:
        overrides["report_path"] = args.report
    if args.server_env:
        overrides["server_env"] = config.server_env | dict(
            item.split("=", 1) for item in args.server_env
        )
    overrides["profile"] = args.profile
    return replace(config, **overrides)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark on uvloop when it is installed (as the server does)."""
    config = parse(argv)
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(config))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run(config))


if __name__ == "__main__":
    main()
