"""``report.md`` links each run's ``transferlab eval`` folder (gallery and interpretation.json), relative to it."""

from __future__ import annotations

from pathlib import Path

from tests.report.conftest import write_job, write_multirun
from transferlab.report.build import ReportOptions, build_report


def _sweep(root: Path) -> Path:
    sweep = write_multirun(root / "sweep", ["seed=0,1"])
    for n in (0, 1):
        write_job(sweep / str(n), [f"seed={n}"], {"test/acc": 0.5 + n / 10, "val/acc": 0.5})
    return sweep


def test_runs_with_an_eval_folder_are_linked_and_others_are_not(tmp_path):
    sweep = _sweep(tmp_path)
    folder = sweep / "0" / "eval" / "test"
    folder.mkdir(parents=True)
    for name in ("interpretation.json", "top_losses.png"):
        (folder / name).write_text("{}")
    (sweep / "1" / "eval" / "half").mkdir(parents=True)  # no interpretation.json: not an evaluation
    report = build_report(ReportOptions(dirs=[sweep], out=tmp_path / "out", plots=False))
    text = (report.out_dir / "report.md").read_text()
    section = text.split("## Error analysis (transferlab eval)", 1)[1]
    lines = [line for line in section.splitlines() if line.startswith("- ")]
    assert len(lines) == 1 and "(job 0)" in lines[0] and "eval `test`" in lines[0], section
    for name in ("top_losses.png", "interpretation.json"):
        target = lines[0].split(f"[{name}](", 1)[1].split(")", 1)[0]
        assert (report.out_dir / target).resolve() == (folder / name).resolve(), lines[0]


def test_no_eval_folder_no_section(tmp_path):
    report = build_report(ReportOptions(dirs=[_sweep(tmp_path)], out=tmp_path / "out", plots=False))
    assert "Error analysis" not in (report.out_dir / "report.md").read_text()
