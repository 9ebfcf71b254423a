"""The README's figures are rendered from the committed result files, never typed by hand."""

import copy

import pytest

from benchmarks import figures


def test_readme_figures_match_the_result_files():
    """Every marked block of README.md equals its rendering from benchmarks/results/*.json."""
    text = figures.README.read_text()
    assert figures.render(text, figures.load_results()) == text, "run: python -m benchmarks.figures"


def test_a_changed_result_changes_the_readme():
    """A figure in a result file shows up in the rendered README (the check above can fail)."""
    results = copy.deepcopy(figures.load_results())
    results["latest-city"]["city"]["porto_metro_50k"]["wall_s"] = 987.6
    rendered = figures.render(figures.README.read_text(), results)
    assert "987.6 s, peak RSS" in rendered
    assert rendered != figures.README.read_text()


def test_every_block_must_be_marked():
    """A README without a block's markers is refused with the block's name, not silently left stale."""
    with pytest.raises(ValueError, match="figures:table"):
        figures.render("<!-- figures:make-run -->\n<!-- /figures:make-run -->\n", {})
