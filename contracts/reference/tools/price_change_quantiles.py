"""Typical 7-day price changes per commodity, from the real PIHPS files (reproducible).

For each PIHPS commodity: the absolute 7-calendar-day change |p(t) / p(t - 7 days) - 1| in percent,
for every date t where both prices exist, pooled over Lampung (PIHPS Province_ID 10) and DKI Jakarta
(13); p95 and p99 with linear interpolation (numpy's default method). Carried-forward flat runs and
the rare one-day glitches stay in: they are what a detector sees.

    python contracts/reference/tools/price_change_quantiles.py \
        --data-dir /work/shared/anchors/data/pihps_bi_34prov_2022_2026            # print
    ... --write     # store the figures in contracts/reference/commodities.v1.json
    ... --check     # exit 1 when the file differs from what the data gives

--write fills each PIHPS commodity's price_change_7d.computed block, and p95_pct/p99_pct too where
basis is "computed" ("documented" defaults are kept as given, "assumption" ones have no data).
Standard library only, so it runs without the project's virtualenv.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from datetime import date, timedelta
from pathlib import Path

PROVINCE_IDS = (10, 13)  # PIHPS Lampung, DKI Jakarta
QUANTILES = (0.95, 0.99)
COMMODITIES_FILE = Path(__file__).resolve().parents[1] / "commodities.v1.json"

# sha256 of the input files as copied into the anchors (SOURCES.md): other data gives other figures.
EXPECTED_SHA256 = {
    "beras": "745c2bdbd3198063ba109c202059629ba86d46586e082274898ea861acb17844",
    "daging_ayam": "3aab788d41a111cdcb66b3c5863bd9cf9c566cae35d00028328fd27c3cc84f41",
    "daging_sapi": "11697da510d108dbd495029ddde942fcdf34e23055f39147cbbd39de2666a7dd",
    "telur_ayam": "f9d4a1e045a79f8a73804492820075a2f74f3f8eea56ef924da44c0a040529b3",
    "bawang_merah": "9e26a62f36fd290c77a9ccc6719778f9de3678e499e4d70e2ec2263203a915e4",
    "bawang_putih": "86cd34966a8eff7cad41f48c493ddcdf882f69644ee16399ffaeac60da1f1968",
    "cabai_merah": "3e32ad2fbd3a0bda1e6b162055d77acb353e2cd376b07389d95db4193ef495ef",
    "cabai_rawit": "a37049e6f26fd4925abc9d7c2ca617d99083321957cfcf56ad6a2bc59881e844",
    "minyak_goreng": "062e3b9932c4cbda3c7f5e45601574d0c0d5309bdcb268f49fe3d83276154cac",
    "gula_pasir": "f5c286d615ae3b5e8984106c2ed896e0852c34e5ca5fdd480cd8813a6b477c50",
}


def quantile(sorted_values: list[float], q: float) -> float:
    position = (len(sorted_values) - 1) * q
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def seven_day_changes_pct(path: Path) -> list[float]:
    series: dict[int, dict[date, float]] = {pid: {} for pid in PROVINCE_IDS}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            province_id = int(row["Province_ID"])
            if province_id in series:
                series[province_id][date.fromisoformat(row["Date_Param"])] = float(row["Price"])
    changes = []
    for prices in series.values():
        for day, price in prices.items():
            week_before = prices.get(day - timedelta(days=7))
            if week_before:
                changes.append(abs(price / week_before - 1.0) * 100.0)
    return sorted(changes)


def compute(data_dir: Path) -> dict[str, dict]:
    results = {}
    for commodity, expected in EXPECTED_SHA256.items():
        path = data_dir / f"komoditas_{commodity}_2022_2026.csv"
        if not path.is_file():
            raise SystemExit(f"missing input file {path} (see /work/shared/anchors/data/SOURCES.md)")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected:
            raise SystemExit(f"{path}: sha256 {digest} is not the anchored {expected}; figures would differ")
        changes = seven_day_changes_pct(path)
        p95, p99 = (round(quantile(changes, q), 2) for q in QUANTILES)
        results[commodity] = {"p95_pct": p95, "p99_pct": p99, "sample_size": len(changes)}
    return results


def apply(document: dict, results: dict[str, dict]) -> dict:
    for entry in document["commodities"]:
        computed = results.get(entry["code"])
        change = entry["price_change_7d"]
        change["computed"] = computed
        if computed and change["basis"] == "computed":
            change["p95_pct"], change["p99_pct"] = computed["p95_pct"], computed["p99_pct"]
    return document


def dumps(value: object, indent: int = 0) -> str:
    """JSON with short objects and lists on one line, so the reference files stay readable."""
    pad, inner = "  " * indent, "  " * (indent + 1)
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, dict | list) or len(flat) + len(pad) <= 100:
        return flat
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {dumps(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    return "[\n" + ",\n".join(f"{inner}{dumps(v, indent + 1)}" for v in value) + "\n" + pad + "]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="folder with komoditas_*_2022_2026.csv")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"update {COMMODITIES_FILE.name}")
    mode.add_argument("--check", action="store_true", help=f"fail if {COMMODITIES_FILE.name} is stale")
    args = parser.parse_args()

    results = compute(args.data_dir)
    if not (args.write or args.check):
        print(dumps(results))
        return 0
    current = COMMODITIES_FILE.read_text(encoding="utf-8")
    updated = dumps(apply(json.loads(current), results)) + "\n"
    if args.write:
        COMMODITIES_FILE.write_text(updated, encoding="utf-8")
        print(f"wrote {COMMODITIES_FILE}")
        return 0
    if current != updated:
        print(f"{COMMODITIES_FILE} is stale: run this script with --write", file=sys.stderr)
        return 1
    print(f"{COMMODITIES_FILE} matches the data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
