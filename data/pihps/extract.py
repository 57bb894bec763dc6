"""Copy the Lampung and DKI Jakarta rows of the PIHPS anchor files into data/pihps/.

Each output line is the input line byte for byte (header first, row order kept); nothing is
parsed or re-formatted, so the subset can be checked against the anchor with grep.

    .venv/bin/python data/pihps/extract.py [ANCHOR_DIR]

ANCHOR_DIR defaults to /work/shared/anchors/data/pihps_bi_34prov_2022_2026.
"""

from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_ANCHOR_DIR = Path("/work/shared/anchors/data/pihps_bi_34prov_2022_2026")
PROVINCE_IDS = {b"10", b"13"}  # PIHPS ids: 10 Lampung, 13 DKI Jakarta
PROVINCE_ID_COLUMN = 4
EXPECTED_HEADER = b"Date_Scraped,Date_Param,Commodity_ID,Commodity_Name,Province_ID,Province_Name,Price,Price_Type\n"


def extract(source: Path, target: Path) -> int:
    kept = 0
    with source.open("rb") as src, target.open("wb") as out:
        header = src.readline()
        if header != EXPECTED_HEADER:
            raise SystemExit(f"{source}: unexpected header {header!r}; update extract.py for the new layout")
        out.write(header)
        for line in src:
            if line.split(b",")[PROVINCE_ID_COLUMN] in PROVINCE_IDS:
                out.write(line)
                kept += 1
    return kept


def main(argv: list[str]) -> None:
    anchor_dir = Path(argv[1]) if len(argv) > 1 else DEFAULT_ANCHOR_DIR
    here = Path(__file__).resolve().parent
    sources = sorted(anchor_dir.glob("komoditas_*_2022_2026.csv"))
    if len(sources) != 10:
        raise SystemExit(f"{anchor_dir}: expected 10 komoditas_*_2022_2026.csv files, found {len(sources)}")
    for source in sources:
        print(f"{source.name}: {extract(source, here / source.name)} rows")


if __name__ == "__main__":
    main(sys.argv)
