"""Command line: ``python -m salbench reproduce ...`` and ``python -m salbench data ...``."""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

from salbench import paths
from salbench import config
from salbench.config import BACKGROUNDS, PROFILES, SPLITS, ConfigError, Profile, load_profile


def notebooks() -> list[Path]:
    return sorted((paths.repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _parse_param(text: str):
    if "=" not in text:
        raise SystemExit(f"-p {text!r}: expected NAME=VALUE")
    name, raw = text.split("=", 1)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return name.strip(), value


def select_notebooks(only: list[str] | None) -> list[Path]:
    found = notebooks()
    if not only:
        return found
    chosen = []
    names = [p.stem for p in found]
    for want in only:
        match = [p for p in found if p.stem == want or p.stem.startswith(want + "_") or p.stem[:2] == want]
        if not match:
            raise SystemExit(f"--only {want!r}: no such notebook; valid: {names}")
        chosen += [m for m in match if m not in chosen]
    return sorted(chosen)


def profile_parameter(profile: Profile) -> str:
    """What the notebooks' `profile` parameter gets: the name of a built-in profile used
    as written, else the path of the resolved profile dumped to build/profiles/."""
    if profile.name in PROFILES and not profile.overrides:
        return profile.name
    return str(config.dump_profile(profile, paths.build_dir() / "profiles" / f"{profile.name}.yaml"))


def reproduce(profile: str | Profile, only: list[str] | None = None, params: dict | None = None,
              progress: bool = True) -> list[Path]:
    """Run the notebooks in order with papermill; return the executed copies."""
    import papermill as pm

    resolved = profile if isinstance(profile, Profile) else load_profile(profile)  # fail early on a bad profile
    profile = resolved.name
    profile_arg = profile_parameter(resolved)
    params = dict(params or {})
    selected = select_notebooks(only)
    out_dir = paths.build_dir() / "notebooks"
    log_dir = paths.build_dir() / "logs"
    out_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    # Check every notebook's parameters before running any of them.
    for nb in selected:
        declared = pm.inspect_notebook(str(nb))
        if "profile" not in declared:
            raise SystemExit(f"{nb.name}: its parameters cell does not declare 'profile'")
    unknown = {k for k in params if not any(k in pm.inspect_notebook(str(nb)) for nb in selected)}
    if unknown:
        raise SystemExit(f"parameter(s) {sorted(unknown)} are not declared by any of {[n.stem for n in selected]}")
    executed = []
    for i, nb in enumerate(selected, 1):
        declared = pm.inspect_notebook(str(nb))
        nb_params = {"profile": profile_arg, **{k: v for k, v in params.items() if k in declared}}
        out = out_dir / f"{nb.stem}__{profile}.ipynb"
        tmp = out.with_name(f".{out.stem}.running.ipynb")
        log = log_dir / f"{nb.stem}__{profile}.log"
        print(f"[{i}/{len(selected)}] {nb.name} (profile={profile}) -> {out.relative_to(paths.repo_root())}", flush=True)
        start = time.time()
        with open(log, "w") as fh:
            pm.execute_notebook(
                str(nb), str(tmp), parameters=nb_params, progress_bar=progress,
                stdout_file=fh, stderr_file=fh, cwd=str(nb.parent), kernel_name="python3",
            )
        tmp.replace(out)  # only a notebook that ran to the end gets the final name
        print(f"    done in {time.time() - start:.0f} s; log: {log.relative_to(paths.repo_root())}", flush=True)
        executed.append(out)
    return executed


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

    rpt = sub.add_parser("report", help="rewrite paper.md's generated numbers and tables from tables/*.csv")
    rpt.add_argument("--check", action="store_true",
                     help="rewrite nothing; exit 1 naming every generated part that differs from the tables")
    rpt.add_argument("--paper", type=Path, default=None, help="default: paper.md")
    rpt.add_argument("--tables", type=Path, default=None, help="default: tables/")

    args = parser.parse_args(argv)
    try:
        if args.command == "report":
            from salbench import report

            return report.main(args.paper, args.tables, check_only=args.check)
        if args.command == "claims":
            from salbench import claims

            print(claims.write_claims(args.tables))
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
    except (ConfigError, ValueError, OSError) as err:
        # A user-caused error: one line, no traceback.
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    return 0
