"""Run every benchmark script in bench/ and collect their figures into bench/results.md.

python bench/run_all.py [--quick] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"


def scripts(only: list[str]) -> list[Path]:
    found = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_") and p.name != "run_all.py")
    return [p for p in found if not only or p.stem in only]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, same measurements")
    parser.add_argument("--only", nargs="*", default=[])
    args = parser.parse_args()
    lines = [
        "# Benchmark results",
        "",
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}{' (--quick)' if args.quick else ''}. "
        "Each figure is compared with a baseline measured in the same run; the ratio is what to read.",
        "",
    ]
    failed = []
    for script in scripts(args.only):
        print(f"== {script.name}", flush=True)
        started = time.monotonic()
        cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        proc = subprocess.run(cmd, cwd=BENCH.parent, check=False)
        took = time.monotonic() - started
        result = OUT / f"{script.stem}.json"
        lines += [
            f"## {script.stem}",
            "",
            f"`python bench/{script.name}{' --quick' if args.quick else ''}` ({took:.0f} s, exit {proc.returncode})",
            "",
        ]
        if proc.returncode != 0 or not result.exists():
            failed.append(script.stem)
            lines += ["Failed: see its output.", ""]
            continue
        figures = json.loads(result.read_text())["figures"]
        lines += ["| metric | value | unit | baseline | baseline value | ratio |", "|---|---:|---|---|---:|---:|"]
        for f in figures:
            lines.append(
                f"| {f['metric']} | {f['value']:,} | {f['unit']} | {f.get('baseline', '')} | "
                f"{'' if f.get('baseline_value') is None else format(f['baseline_value'], ',')} | "
                f"{'' if f.get('ratio') is None else f['ratio']} |"
            )
        lines.append("")
    (BENCH / "results.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {BENCH / 'results.md'}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
