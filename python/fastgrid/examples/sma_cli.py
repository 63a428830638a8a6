"""The crossover backtest as a command-line script that names its own result file.

    python -m fastgrid.examples.sma_cli --config CONFIG.json --results-dir DIR

writes the metrics (and the per-bar ``returns``) to ``DIR/{symbol}_{timeframe}_{stamp}.json``
(the way many backtest scripts name their output, which fastgrid's results index finds without
being told the name) and prints them as the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from fastgrid.examples.sma import run

__all__ = ["main", "result_name"]


def result_name(symbol: str, timeframe: str, when: datetime) -> str:
    """``{symbol}_{timeframe}_{stamp}.json`` with a UTC stamp that sorts in time order."""
    return f"{symbol}_{timeframe}_{when.astimezone(UTC):%Y%m%dT%H%M%S%fZ}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sma_cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path, help="the merged config (JSON)")
    parser.add_argument("--results-dir", required=True, type=Path, help="where the result file goes")
    args = parser.parse_args(argv)
    try:
        config = json.loads(args.config.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"sma_cli: cannot read config {args.config}: {exc}", file=sys.stderr)
        return 2
    metrics = run(config)
    metrics["returns"] = metrics["returns"].tolist()  # the per-bar returns, as a JSON list
    args.results_dir.mkdir(parents=True, exist_ok=True)
    name = result_name(config["data"]["symbol"], config["data"]["timeframe"], datetime.now(UTC))
    target = args.results_dir / name
    # Written under a temporary name and renamed into place: a reader never sees half a file.
    tmp = target.with_name(f".{name}.tmp")
    tmp.write_text(json.dumps(metrics))
    os.replace(tmp, target)
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
