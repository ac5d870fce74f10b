"""Compare the results tables of two output directories row by row, e.g. before and after a change.

    python scripts/compare_results.py runs-before runs-after fig4a fig4b

For each experiment: the rows both tables have (metrics added by the newer one are listed, not compared) must
have the same keys, values and episode counts. Exit status 0 if every experiment is identical, 1 otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from internalize.schema import KEY_COLUMNS
from internalize.storage import read_parquet_verified


def compare(before: Path, after: Path, experiment: str) -> bool:
    a = read_parquet_verified(before / experiment / "results.parquet")
    b = read_parquet_verified(after / experiment / "results.parquet")
    added = sorted(set(b["metric"]) - set(a["metric"]))
    removed = sorted(set(a["metric"]) - set(b["metric"]))
    b = b[b["metric"].isin(set(a["metric"]))]
    key = [c for c in KEY_COLUMNS if c != "experiment"]
    a = a.sort_values(key).reset_index(drop=True)
    b = b.sort_values(key).reset_index(drop=True)
    same_keys = len(a) == len(b) and a[key].equals(b[key])
    differing = -1
    if same_keys:
        both_nan = a["value"].isna() & b["value"].isna()
        differing = int(((a["value"] != b["value"]) & ~both_nan).sum())
    same = same_keys and differing == 0 and a["episode"].equals(b["episode"]) and not removed
    print(f"{experiment}: {len(a)} rows vs {len(b)}; same keys {same_keys}; differing values {differing}; "
          f"episodes equal {a['episode'].equals(b['episode'])}; metrics added {added or 'none'}; "
          f"removed {removed or 'none'} -> {'identical' if same else 'DIFFERENT'}")
    return same


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    before, after, *experiments = argv
    results = [compare(Path(before), Path(after), e) for e in experiments]
    return 0 if all(results) else 1


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    sys.exit(main(sys.argv[1:]))
