"""Paper 000's tables in its layout: the paper's row, ours beneath, from the grid's cells."""

from __future__ import annotations

from experiments.ablation_grid import full_grid
from experiments.ablation_tables import OUT_OF_SCOPE, paper_tables
from LNSynthLib.report import paper000


def _results(multiples: tuple[int, ...], base: int) -> list[dict]:
    """One fake result per cell of the grid: DSC = the cell's position / 100, seeds 0 and 1 (mean = DSC + 0.005)."""
    return [{"cell": c.__dict__, "seed": s, "segmentation": {"DSC": i / 100 + s / 100, "NodeRecall": 1.0}}
            for i, c in enumerate(full_grid(multiples, base)) for s in (0, 1)]


def _ours(text: str, after: str) -> str:
    """The `ours` line under the paper row starting with `after`."""
    lines = text.splitlines()
    return lines[lines.index(next(line for line in lines if line.startswith(after))) + 1]


def test_every_table_has_the_papers_rows_with_ours_beneath() -> None:
    names = [c.name for c in full_grid((1, 2, 4), 2)]
    text = paper_tables(_results((1, 2, 4), 2), {"LN-DDPM": {"MSE": 0.25, "samples": "all 8 samples"}}, 2, (1, 2, 4))
    titles = [line for line in text.splitlines() if line.startswith("### ")]
    assert [t.split(":")[0] for t in titles] == ["### Table 1", "### Table 2", "### Table 3", "### Table 4a",
                                                 "### Table 4b", "### Table 4c"]
    dsc = {name: f"{names.index(name) / 100 + 0.005:.4f}" for name in names}
    # Table 2: Real + Synt LN-DDPM is the base multiple's Real + Synt cell; Synt LN-DDPM the Synt base cell
    assert _ours(text, "| Real + Synt | LN-DDPM | paper | 0.5655").startswith(f"|  |  | ours | {dsc['multiple-2x']} |")
    assert _ours(text, "| Synt | LN-DDPM | paper | 0.5376").startswith(f"|  |  | ours | {dsc['conditioning-ln_ddpm']} |")
    assert _ours(text, "| Real | - | paper | 0.5273").startswith(f"|  |  | ours | {dsc['real']} |")
    assert _ours(text, "| Synt | SPADE | paper").startswith(f"|  |  | {OUT_OF_SCOPE} |")
    # Table 3 rows in the paper's order: LN mask only, + AS, + LDCond
    assert _ours(text, "| ✓ |  |  | paper | 0.3421").startswith(
        f"|  |  |  | ours | {dsc['conditioning-gscond_ln_only']} |")
    # Table 4a: our CPU multiples stand in for 5/10/20x by position and say so
    assert _ours(text, "| 20× | paper | 0.5345").startswith(f"|  | ours (4×) | {dsc['multiple-4x']} |")
    assert _ours(text, "| ✗ | paper | 0.5227").startswith(f"|  | ours | {dsc['transforms-off']} |")
    assert _ours(text, "| GA | paper | 0.5156").startswith(f"|  | ours | {dsc['attention-GA']} |")
    # Table 1: our LN-DDPM row says which samples it covers; Med-DDPM was not evaluated here
    assert _ours(text, "| LN-DDPM | paper | 0.0488").startswith("|  | ours (all 8 samples) | 0.2500 |")
    assert _ours(text, "| Med-DDPM | paper | 0.0896").startswith("|  | not run |")
    assert all(f"| {m} | paper |" in text for m in paper000.METHODS)


def test_the_papers_numbers_are_its_own() -> None:
    """Spot checks against the paper's text (Tables 1-4) and the identities the paper's tables share."""
    t2 = {(r["strategy"], r["method"]): r for r in paper000.TABLE2}
    assert len(paper000.TABLE1) == 7 and len(paper000.TABLE2) == 15
    assert paper000.TABLE1[-1]["NodeRecall_synt"] == 0.5258 and t2[("Synt", "Med-DDPM")]["ASSD"] == 25.7986
    synt, real_synt = t2[("Synt", "LN-DDPM")], t2[("Real + Synt", "LN-DDPM")]
    assert paper000.TABLE3[-1] == {"gscond_ln": True, "gscond_as": True, "ldcond": True,
                                   **{k: synt[k] for k in paper000.METRIC_NAMES}}
    assert {k: paper000.TABLE4A[1][k] for k in paper000.METRIC_NAMES} == \
        {k: real_synt[k] for k in paper000.METRIC_NAMES}   # Table 4a's 10x row is Table 2's Real + Synt row
    assert paper000.TABLE4B[1]["DSC"] == paper000.TABLE4C[0]["DSC"] == synt["DSC"]


def test_table1_scores_the_samples_the_cell_trained_on(tmp_path) -> None:
    """The model's folder holds 3 samples per case (a larger Table 4a multiple); a 2x cell's Table 1 uses 2."""
    import json

    from experiments.ablation_bench import cell_samples
    from LNSynthLib.cases import META_FILE, list_cases

    synthetic = tmp_path / "synthetic"
    for case in ("a", "b"):
        for k in range(3):
            folder = synthetic / f"{case}_synt_{k}"
            folder.mkdir(parents=True)
            (folder / META_FILE).write_text(json.dumps({"source_case": case}), encoding="utf-8")
    view = cell_samples(synthetic, 2, tmp_path / "view")
    assert [f.name for f in list_cases(view)] == ["a_synt_0", "a_synt_1", "b_synt_0", "b_synt_1"]
    assert (view / "a_synt_1").resolve() == (synthetic / "a_synt_1").resolve()
    assert cell_samples(synthetic, 2, tmp_path / "view") == view          # a rerun keeps the links
