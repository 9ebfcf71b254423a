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


def test_the_demo_row_shows_the_demo_beside_simulate():
    """The `make run` row renders the demo's wall time and KPIs and simulate's from a demo result."""
    results = copy.deepcopy(figures.load_results())
    results["latest-demo"] = {"started": "2026-12-04 20:00", "machine": "x86_64, 2 cores", "demo": {
        "scenario": "scenarios/porto-centre-day.toml",
        "demo": {"wall_s": 312.0, "peak_rss_mb": 640.0, "banner": "",
                 "kpis": {"on_time_rate": 0.9631, "click_to_door_min": 21.4}},
        "simulate": {"on_time_rate": 0.9718, "click_to_door_mean_min": 20.33}}}
    rendered = figures.table(results)
    assert "5.2 min, peak RSS 640 MB; 96.3% on time, click-to-door 21.4 min (simulate: 97.2%, 20.3 min)" in rendered


def test_the_porto_scenario_quotes_with_the_model_the_policies_suite_fitted():
    """scenarios/porto-centre-day.toml runs its own policy with the express model that the `policies` suite fitted
    for that policy on other seeds (latest-policies.json), so `make simulate`'s quotes are the reported ones."""
    from api.scenario_file import load_scenario

    scenario = load_scenario(figures.ROOT / "scenarios" / "porto-centre-day.toml")
    fit = figures.load_results()["latest-policies"]["policies"]["quotes"][f"porto, {scenario.policy.name}"]
    model = scenario.promise.express_model
    assert model is not None and scenario.seed not in fit["trained_on"]
    assert {k: getattr(model, k) for k in fit["model"]} == fit["model"]


def test_a_result_file_names_how_fast_its_machine_was():
    """A run's Markdown head gives the machine's speed when the run measured it, and reads as before without it."""
    from benchmarks.run import machine_speed, markdown

    speed = machine_speed()
    assert 0 < speed < 60
    head = {"started": "2026-12-07 07:00", "machine": "x86_64, 2 cores", "args": {}}
    assert markdown(head | {"speed_s": speed}).splitlines()[0] == (
        f"# lastmile benchmarks (2026-12-07 07:00, x86_64, 2 cores, 10^7 Python additions in {speed} s)")
    assert markdown(head).splitlines()[0] == "# lastmile benchmarks (2026-12-07 07:00, x86_64, 2 cores)"
