"""Command line: ``python -m salbench reproduce ...`` and ``python -m salbench data ...``."""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from salbench import config
from salbench.config import BACKGROUNDS, PROFILES, SPLITS, ConfigError
from salbench.errors import ReportError
from salbench.provenance import DirtyTreeError
from salbench.runner import notebooks, profile_parameter, reproduce, select_notebooks  # noqa: F401 -- moved; names kept


def _parse_param(text: str):
    if "=" not in text:
        raise SystemExit(f"-p {text!r}: expected NAME=VALUE")
    name, raw = text.split("=", 1)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return name.strip(), value


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="salbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    # --set over --config over --profile (config.resolve_profile).
    prof = argparse.ArgumentParser(add_help=False)
    prof.add_argument("--profile", choices=PROFILES, default=None,
                      help="a built-in profile (reproduce: quick unless --config is given)")
    prof.add_argument("--config", type=Path, default=None, metavar="FILE.yaml",
                      help="a profile file anywhere; alone it is the profile, with --profile its keys override it")
    prof.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE",
                      help="override one key (value read as YAML), e.g. data.mri_dir=/path/to/niftis; repeatable")

    rep = sub.add_parser("reproduce", parents=[prof], help="run the notebooks in order with papermill")
    rep.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="e.g. 01_data or 01")
    rep.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                     help="a notebook parameter (must be declared by a selected notebook; not the profile)")
    rep.add_argument("--no-progress", action="store_true")

    data = sub.add_parser("data", help="generate or export the synthetic data set")
    dsub = data.add_subparsers(dest="data_command", required=True)
    dsub.add_parser("generate", parents=[prof], help="generate (or find in the cache) the profile's data set")
    exp = dsub.add_parser("export", parents=[prof],
                          help="write x, y, gt, mask of a range of a split to .npz (generates only that range)")
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
    mode = cmp.add_mutually_exclusive_group()
    mode.add_argument("--claims", action="store_true",
                      help="compare conclusions (claims, method-vs-baseline verdicts, method rankings), not numbers")
    mode.add_argument("--numeric", action="store_true", help="compare numbers row by row (the default)")

    clm = sub.add_parser("claims", help="(re)build tables/claims.csv, the claims ledger, from tables/*.csv")
    clm.add_argument("--tables", type=Path, default=None, help="the tables folder to read and write (default: tables/)")

    ret = sub.add_parser("retie", help="recompute Tomsett's reliability tables from a published fidelity_scores.csv "
                                       "made before the resolution was measured, with ties at its 6 decimals")
    ret.add_argument("--profile", default="quick", choices=PROFILES)

    rpt = sub.add_parser("report", help="rewrite the generated numbers and tables of paper.md and README.md from "
                                        "tables/*.csv, and check their guarded statements")
    mode = rpt.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="rewrite nothing; exit 1 naming every generated part that differs from the tables and "
                           "every statement they do not support")
    mode.add_argument("--statements", action="store_true",
                      help="list every generated part and guarded statement of paper.md and README.md, with its status")
    rpt.add_argument("--paper", type=Path, default=None, help="one document only (default: paper.md and README.md)")
    rpt.add_argument("--tables", type=Path, default=None, help="default: tables/")

    args = parser.parse_args(argv)
    try:
        if args.command == "report":
            from salbench import report

            return report.main(args.paper, args.tables, check_only=args.check, list_statements=args.statements)
        if args.command == "claims":
            from salbench import claims

            print(claims.write_claims(args.tables))
            return 0
        if args.command == "retie":
            from salbench import outputs
            from salbench.pipeline import fidelity

            profile = config.load_profile(args.profile)
            if not profile.publish:
                raise ConfigError(f"--profile {args.profile}: retie rewrites the published tables; choose a "
                                  "publishing profile (quick or paper)")
            import json

            from salbench import paths

            log = paths.repo_root() / "tables" / "provenance.json"
            sha = json.loads(log.read_text()).get("fidelity_scores.csv", {}).get("git_sha", "unknown")[:7]
            source = (f"tables/fidelity_scores.csv (written at {sha}), scores within "
                      f"{fidelity.PUBLISHED_PRECISION:g} tied (python -m salbench retie)")
            for name, table in fidelity.retie_published(profile).items():
                print(outputs.save_table(table, name, profile, derived_from=source))
            return 0
        if args.command == "compare" and args.claims:
            from salbench import compare

            result = compare.compare_conclusions(args.reference, args.tables)
            print("\n".join(result.lines()))
            return 0 if result.ok else 1
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
            if "profile" in params:
                raise ConfigError(
                    f"-p profile={params['profile']!r}: choose the profile with --profile NAME or --config FILE.yaml "
                    "(and --set section.key=value), not -p"
                )
            base = args.profile or (None if args.config else "quick")
            profile = config.resolve_profile(base, args.config, args.sets)
            reproduce(profile, args.only, params, progress=not args.no_progress)
            return 0
        profile = config.resolve_profile(args.profile, args.config, args.sets)
        from salbench.data import store

        if args.data_command == "generate":
            print(store.ensure_dataset(profile))
        else:
            print(store.export_npz(profile, args.background, args.split, args.out, args.start, args.count))
    except (ConfigError, DirtyTreeError, ReportError) as err:  # the message says everything
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as err:  # one line; the traceback goes to a log, in case it is a bug
        print(f"error: {_one_line(err)} (traceback: {_log_traceback(err)})", file=sys.stderr)
        return 2
    return 0


def _log_traceback(err: BaseException) -> str:
    import traceback

    from salbench import atomic, paths

    log = paths.build_dir() / "logs" / "salbench-error.log"
    try:
        atomic.write_text(log, "".join(traceback.format_exception(err)))
    except OSError:
        return "not written"
    return str(log.relative_to(paths.repo_root())) if log.is_relative_to(paths.repo_root()) else str(log)
