"""Command line: ``python -m salbench reproduce ...`` and ``python -m salbench data ...``."""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from salbench.config import BACKGROUNDS, PROFILES, SPLITS, ConfigError, load_profile
from salbench.runner import notebooks, reproduce, select_notebooks  # noqa: F401 -- moved; names kept


def _parse_param(text: str):
    if "=" not in text:
        raise SystemExit(f"-p {text!r}: expected NAME=VALUE")
    name, raw = text.split("=", 1)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return name.strip(), value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="salbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("reproduce", help="run the notebooks in order with papermill")
    rep.add_argument("--profile", choices=PROFILES, default="quick")
    rep.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="e.g. 01_data or 01")
    rep.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                     help="a notebook parameter (must be declared by a selected notebook)")
    rep.add_argument("--no-progress", action="store_true")

    data = sub.add_parser("data", help="generate or export the synthetic data set")
    dsub = data.add_subparsers(dest="data_command", required=True)
    gen = dsub.add_parser("generate", help="generate (or find in the cache) the profile's data set")
    gen.add_argument("--profile", choices=PROFILES, required=True)
    exp = dsub.add_parser("export", help="write x, y, gt, mask of a split to .npz")
    exp.add_argument("--profile", choices=PROFILES, required=True)
    exp.add_argument("--background", choices=BACKGROUNDS, required=True)
    exp.add_argument("--split", choices=SPLITS, required=True)
    exp.add_argument("--start", type=int, default=0)
    exp.add_argument("--count", type=int, default=None)
    exp.add_argument("--out", type=Path, required=True)

    cmp = sub.add_parser("compare", help="compare tables/*.csv with a reference run (default: the committed tables)")
    cmp.add_argument("--reference", default="HEAD", help="a git revision of this repository or a folder of CSVs")
    cmp.add_argument("--tables", type=Path, default=None, help="the run's tables folder (default: tables/)")
    cmp.add_argument("--tolerance", type=float, default=0.0,
                     help="largest absolute difference accepted in numeric columns (default 0: same machine)")

    args = parser.parse_args(argv)
    try:
        if args.command == "compare":
            from salbench import compare

            diffs = compare.compare_tables(args.reference, args.tables, args.tolerance)
            if not diffs:
                print(f"no tables to compare (reference {args.reference!r})", file=sys.stderr)
                return 2
            for d in diffs:
                print("\n".join(d.lines()))
            return 0 if all(d.ok for d in diffs) else 1
        if args.command == "reproduce":
            params = dict(_parse_param(p) for p in args.param)
            reproduce(args.profile, args.only, params, progress=not args.no_progress)
        elif args.data_command == "generate":
            from salbench.data import store

            print(store.ensure_dataset(load_profile(args.profile)))
        else:
            from salbench.data import store

            out = store.export_npz(load_profile(args.profile), args.background, args.split, args.out, args.start, args.count)
            print(out)
    except (ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
