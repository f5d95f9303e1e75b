"""paper.md's generated parts: --check passes on the committed paper, fails naming an edited part."""

import shutil

import pandas as pd
import pytest

from salbench import cli, paths, report


@pytest.fixture
def paper(tmp_path):
    copy = tmp_path / "paper.md"
    shutil.copy(paths.repo_root() / "paper.md", copy)
    return copy


def _run(*args):
    return cli.main(["report", "--tables", str(paths.repo_root() / "tables"), *args])


def test_committed_paper_matches_the_committed_tables(capsys):
    assert _run("--check") == 0, capsys.readouterr().out
    found = report.parts((paths.repo_root() / "paper.md").read_text(), report.Tables())
    blocks = {p.spec.split()[0] for p in found if p.kind == "block"}
    assert {"accuracy_table", "budding_table", "claims_table", "tomsett_alpha_table", "randomization_table",
            "consistency_table", "run_spread_table"} <= blocks
    assert sum(p.kind == "n" for p in found) > 100


def test_edited_block_number_fails_the_check_naming_it(paper, capsys):
    text = paper.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| PatternNet |"))
    cells = row.split(" | ")
    cells[2] = "0.111" if cells[2] != "0.111" else "0.112"  # Perlin mAP
    paper.write_text(text.replace(row, " | ".join(cells)))
    assert _run("--check", "--paper", str(paper)) == 1
    out = capsys.readouterr().out
    assert "differs: report:budding_table (paper.md line" in out and "n:" not in out


def test_edited_inline_number_fails_the_check_and_refresh_restores_it(paper, capsys):
    original = paper.read_text()
    marker = "<!-- n:steps_to_95 mri -->"
    value = original.split(marker, 1)[1].split("<!--", 1)[0]
    paper.write_text(original.replace(marker + value, marker + "0.999"))
    assert _run("--check", "--paper", str(paper)) == 1
    assert "differs: n:steps_to_95 mri (paper.md line" in capsys.readouterr().out
    assert _run("--paper", str(paper)) == 0
    assert paper.read_text() == original  # refresh restores exactly what the tables give
    assert report.refresh(paper) == [] and paper.read_text() == original  # and is idempotent
    assert not list(paper.parent.glob(".paper.md.tmp-*"))


def test_unknown_generator_is_named_by_check_and_stops_refresh(paper, capsys):
    paper.write_text(paper.read_text() + "\n<!-- report:nosuch -->\nx\n<!-- /report:nosuch -->\n"
                     "<!-- n:nosuch_number a -->1<!-- /n -->\n")
    assert _run("--check", "--paper", str(paper)) == 1
    out = capsys.readouterr().out
    assert "report:nosuch (paper.md line" in out and "unknown block generator 'nosuch'" in out
    assert "unknown number generator 'nosuch_number'" in out
    before = paper.read_text()
    with pytest.raises(report.ReportError, match="unknown block generator 'nosuch'; valid: \\['accuracy_table'"):
        report.refresh(paper)
    assert paper.read_text() == before


@pytest.mark.parametrize("text, fragment", [
    ("<!-- report:budding_table -->\nno end\n", "unclosed or malformed block marker"),
    ("x <!-- n:mean perlin -->1 no end\n", "unclosed or malformed n marker"),
])
def test_malformed_markers_are_refused(paper, text, fragment):
    paper.write_text(text)
    with pytest.raises(report.ReportError, match=fragment):
        report.check(paper)


def test_wrong_arguments_name_the_signature(paper):
    paper.write_text("<!-- n:mean perlin trained -->0.1<!-- /n -->\n")
    (bad,) = report.check(paper)
    assert bad.expected is None and "missing a required argument: 'method'" in bad.error
    assert "mean(t: 'Tables', background, model, method, metric" in bad.error


def _scores(tmp_path, rows):
    """Scores of the selected run 0, and of run 1 with every score 0.99: the report quotes only the selected run."""
    df = pd.DataFrame(rows, columns=["background", "model", "method", "image", "auprc", "constant_map"])
    other = df.assign(run=1, selected=False, auprc=0.99)
    pd.concat([df.assign(run=0, selected=True), other]).to_csv(tmp_path / "localization_scores.csv", index=False)
    return report.Tables(tmp_path)


def test_generators_on_a_small_table(tmp_path):
    t = _scores(tmp_path, [
        ("perlin", "trained", "gradient", 0, 0.8, False), ("perlin", "trained", "gradient", 1, 0.7, False),
        ("perlin", "trained", "sensitivity", 0, 0.8, False), ("perlin", "trained", "sensitivity", 1, 0.7, False),
        ("perlin", "trained", "xrai", 0, 0.2, False), ("perlin", "trained", "xrai", 1, 0.3, False),
        ("perlin", "baseline", "constant", 0, 0.5, True), ("perlin", "baseline", "constant", 1, 0.5, True),
    ])
    assert report.mean(t, "perlin", "trained", "xrai", "auprc") == "0.250"
    assert report.extreme(t, "perlin", "trained", "auprc") == "Gradient and Sensitivity (0.750)"  # a tie
    assert report.extreme(t, "perlin", "trained", "auprc", which="min", digits=2) == "XRAI (0.25)"
    assert report.count_below(t, "perlin", "trained", "auprc", "baseline", "constant") == "1 of 3"
    assert report.list_below(t, "perlin", "trained", "auprc", "baseline", "constant") == "XRAI"
    assert report.rank(t, "perlin", "trained", "sensitivity", "auprc") == "1"
    assert report.rank(t, "perlin", "trained", "xrai", "auprc") == "3"
    assert report.both(t, "baseline", "constant", "auprc", pct=0) == "50 %"
    with pytest.raises(report.ReportError, match="no 'ap' for"):
        report.mean(t, "perlin", "trained", "xrai", "ap")


def test_a_stored_half_is_not_rounded_again():
    assert report.from_table(0.4234, 3) == "0.423" and report.from_table(0.4235, 4) == "0.4235"
    with pytest.raises(report.ReportError, match="0.4235 is stored with 4 decimals"):
        report.from_table(0.4235, 3)
    assert report.sci(1.008e-17) == "1.0e-17" and report.sci(5.165e-07) == "5.2e-7"


def test_claims_table_block_takes_arguments_and_shows_runs(tmp_path):
    from salbench import claims

    summary = pd.DataFrame({
        "run": [0, 0, 1, 1], "background": ["perlin", "mri"] * 2, "model": "trained", "method": "patternnet",
        "mean_ap": [0.41, 0.22, 0.36, 0.39], "n_images": 40})
    claim = claims.mean_difference_claim("c1", "Budding", "PatternNet | Perlin > MRI", "localization_summary",
                                         "mean_ap", {"background": "perlin"}, {"background": "mri"},
                                         paper_value="none given", statistic="mAP difference")
    claims.ledger([claim], {"localization_summary": summary}).to_csv(tmp_path / "claims.csv", index=False)
    text = "x\n<!-- report:claims_table paper=Budding -->\nold\n<!-- /report:claims_table -->\n"
    out = report.render(text, report.Tables(tmp_path))
    row = out.splitlines()[4]
    assert row == ("| PatternNet \\| Perlin > MRI | Budding | none given | mAP difference | "
                   "0.0800 pooled; per run 0.1900 (run 0), -0.0300 (run 1) | holds in some runs (1 of 2) |")
    bad = text.replace("paper=Budding", "paper=Tomsett")
    with pytest.raises(report.ReportError, match="paper='Tomsett': the ledger has \\['Budding'\\]"):
        report.render(bad, report.Tables(tmp_path))


# --------------------------------------------------------------------------- guarded statements


def _tables_copy(tmp_path):
    folder = tmp_path / "tables"
    shutil.copytree(paths.repo_root() / "tables", folder)
    return folder


def test_a_guarded_statement_fails_the_check_naming_it_when_its_table_changes(tmp_path, capsys):
    folder = _tables_copy(tmp_path)
    doc = tmp_path / "paper.md"
    doc.write_text("Intro.\n\n<!-- s:extreme mri trained ap which=max has 'Guided Backprop' -->Guided Backprop has\n"
                   "the highest mean AP on MRI (<!-- n:mean mri trained guided_backprop ap -->0.817<!-- /n -->)."
                   "<!-- /s -->\n")
    args = ["report", "--tables", str(folder), "--paper", str(doc)]
    assert cli.main([*args, "--check"]) == 0, capsys.readouterr().out
    scores = pd.read_csv(folder / "localization_scores.csv")
    gradient = (scores.background == "mri") & (scores.model == "trained") & (scores.method == "gradient")
    scores.loc[gradient, "ap"] = 0.99
    scores.to_csv(folder / "localization_scores.csv", index=False)
    assert cli.main([*args, "--check"]) == 1
    out = capsys.readouterr().out
    assert "false: s:extreme mri trained ap which=max has 'Guided Backprop' (paper.md line 3)" in out
    assert "Guided Backprop has the highest mean AP on MRI (0.817)." in out  # the sentence, named
    assert "gave 'Gradient (0.990)'" in out
    # Refreshing rewrites the number inside it, not the statement, and still reports it false.
    assert cli.main(args) == 1
    assert "false: s:" in capsys.readouterr().out and "which=max has" in doc.read_text()


def test_a_generated_sentence_follows_its_table(tmp_path):
    folder = _tables_copy(tmp_path)
    doc = tmp_path / "paper.md"
    doc.write_text("Best on MRI: <!-- n:extreme mri trained ap which=max -->x<!-- /n -->.\n")
    assert report.refresh(doc, folder)
    marker = "<!-- n:extreme mri trained ap which=max -->"
    assert doc.read_text() == f"Best on MRI: {marker}Guided Backprop (0.817)<!-- /n -->.\n"
    scores = pd.read_csv(folder / "localization_scores.csv")
    scores.loc[(scores.background == "mri") & (scores.method == "xrai") & (scores.model == "trained"), "ap"] = 0.95
    scores.to_csv(folder / "localization_scores.csv", index=False)
    report.refresh(doc, folder)
    assert doc.read_text() == f"Best on MRI: {marker}XRAI (0.950)<!-- /n -->.\n"


@pytest.mark.parametrize("condition, holds", [
    ("n_methods trained == 17", True),
    ("n_methods trained > 17", False),
    ("verdicts auprc low pass == all", True),
    ("verdicts auprc low pass == none", False),
    ("verdicts auprc high did_not_pass != none", True),
    ("count_below perlin trained auprc baseline constant >= 5", True),  # '5 of 17' compares 5
    ("rand_range randomized auprc < 0.4", True),  # a range: every value below
    ("rand_range randomized auprc > 0.01", False),  # its bottom is 0.008
    ("extreme perlin trained auprc which=min has 'PatternNet'", True),
    ("mean mri trained guided_backprop ap > {mean perlin trained guided_backprop ap}", True),
    ("n_methods trained == 17 ; extreme mri trained ap which=max has 'XRAI'", False),
])
def test_conditions_compare_counts_ranges_texts_and_generators(condition, holds):
    assert report.evaluate_condition(report.Tables(), condition)[0] is holds


@pytest.mark.parametrize("condition, message", [
    ("n_methods trained", "expected 'GENERATOR args OP VALUE'"),
    ("nosuch a == 1", "unknown number generator 'nosuch'"),
    ("rand_range randomized auprc == 0.3", "is a range"),
    ("n_methods trained == all", "'all' compares a 'k of n' count"),
])
def test_malformed_conditions_are_named(condition, message):
    with pytest.raises(report.ReportError, match=message):
        report.evaluate_condition(report.Tables(), condition)


def test_statements_lists_generated_and_guarded_parts(tmp_path, capsys):
    doc = tmp_path / "paper.md"
    doc.write_text("<!-- s:n_methods trained == 17 -->All seventeen methods were scored.<!-- /s -->\n"
                   "<!-- s:n_methods trained == 3 -->Three were.<!-- /s --> <!-- n:n_methods trained -->17<!-- /n -->\n")
    assert _run("--statements", "--paper", str(doc)) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("holds     guarded   paper.md:1  'All seventeen methods were scored.'")
    assert out[1].startswith("FALSE     guarded   paper.md:2  'Three were.'")
    assert out[2].startswith("current   generated paper.md:2  n:n_methods trained = '17'")
    assert out[-1] == "2 guarded statement(s) (1 hold), 1 generated part(s) (0 tables, 1 numbers); 1 to fix"


def test_a_statement_inside_a_statement_is_refused(tmp_path):
    doc = "<!-- s:n_methods trained == 17 -->a <!-- s:n_methods trained == 17 -->b<!-- /s --> c<!-- /s -->"
    with pytest.raises(report.ReportError, match="statement inside a statement|unclosed"):
        report.parts(doc, report.Tables())


def test_a_missing_document_or_tables_folder_is_one_line(tmp_path, capsys):
    assert cli.main(["report", "--check", "--paper", str(tmp_path / "nosuch.md")]) == 2
    assert capsys.readouterr().err.strip() == f"error: --paper {tmp_path / 'nosuch.md'}: no such file"
    assert cli.main(["report", "--check", "--tables", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.strip() == f"error: tables folder {tmp_path / 'none'}: no such folder"
