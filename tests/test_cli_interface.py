"""The command line as scripts and shells use it: fast help without torch, paired flags, global options
anywhere, --json objects (success and failure), --run-dir, log levels and the log file."""

import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml

from conftest import SLICE
from edgekit.cli import COMMANDS, hoist_globals, main

ROOT = Path(__file__).parent.parent
QUICK = [
    "--epochs", "0", "--set", f"data.root={SLICE}", "--set", "export.parity_images=16",
    "--set", "validate.min_seconds=0.05", "--set", "validate.min_runs=5", "--set", "validate.warmup_s=0",
]  # fmt: skip


def _recipe(argv: list[str], capsys) -> dict:
    assert main([*argv, "--print-recipe"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_help_does_not_import_torch():
    code = (
        "import sys; from edgekit.cli import main; rc = main(['compress', '--help']); print(rc, 'torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.stdout.strip().splitlines()[-1] == "0 False", proc.stdout + proc.stderr


def test_choices_match_the_recipe_types():
    from edgekit.cli import choices
    from edgekit.quant.qat import QatConfig
    from edgekit.search import Config as SearchConfig
    from edgekit.stages import prune, quantize, rewrite
    from edgekit.target import PLATFORMS, TargetConfig

    def literal(cls, key):
        return set(typing.get_args(typing.get_type_hints(cls)[key]))

    assert {c.value for c in choices.Importance} == literal(prune.Config, "importance")
    assert {c.value for c in choices.Calibration} == literal(quantize.Config, "calibration")
    assert {c.value for c in choices.Mode} == literal(QatConfig, "mode") == literal(rewrite.Config, "mode")
    assert [c.value for c in choices.Platform] == list(PLATFORMS) and TargetConfig is not None
    assert {c.value for c in choices.SearchAlgorithm} == literal(SearchConfig, "algorithm")


def test_commands_list_matches_the_app():
    from edgekit.cli.app import app

    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert set(COMMANDS) == names


def test_paired_flags_turn_a_recipe_setting_off_again(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: lenet5}\nquantize: {enabled: true}\nexport: {fp16: true}\n")
    on = _recipe(["run", str(recipe)], capsys)
    assert on["quantize"]["enabled"] is True and on["export"]["fp16"] is True
    off = _recipe(["run", str(recipe), "--no-int8", "--no-fp16", "--no-distill", "--no-baseline-cache"], capsys)
    assert off["quantize"]["enabled"] is False and off["export"]["fp16"] is False
    assert off["distill"]["enabled"] is False and off["train"]["cache"] is False


def test_global_options_may_follow_the_command(capsys):
    assert hoist_globals(["compress", "lenet", "-q", "--log-file", "x.log", "--prune", "0.3"]) == [
        "-q", "--log-file", "x.log", "compress", "lenet", "--prune", "0.3",
    ]  # fmt: skip
    assert hoist_globals(["run", "r.yaml", "--", "-q"]) == ["run", "r.yaml", "--", "-q"]
    assert _recipe(["compress", "lenet", "-v", "--prune", "0.2"], capsys)["prune"]["ratio"] == 0.2


def test_usage_errors_are_one_line_with_the_fix(capsys):
    assert main(["compress", "lenet", "--prnue", "0.3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: No such option: --prnue") and "--prune" in err and len(err.splitlines()) == 1
    assert "edgekit compress --help" in err
    assert main(["models", "--prune", "0.3"]) == 2  # another command's flag: whose it is, not a spelling guess
    err = capsys.readouterr().err
    assert err.startswith("error: --prune is an option of `edgekit compress`, not of `edgekit models`")
    assert main(["compress", "lenet", "--importance", "foo"]) == 2
    err = capsys.readouterr().err
    assert "'foo'" in err and "taylor" in err and len(err.splitlines()) == 1


def test_json_error_object_when_the_input_is_bad(tmp_path, capsys):
    assert main(["compress", "mobilenet_v33", "--json", "--output", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    obj = json.loads(captured.out)
    assert obj["status"] == "error" and obj["exit_code"] == 2 and obj["run_dir"] is None
    assert "unknown model 'mobilenet_v33'" in obj["error"] and captured.err.startswith("error: ")
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_json_run_with_an_exact_run_dir(tmp_path, capsys):
    """stdout is one JSON object (progress went to stderr); the run lands in --run-dir; a second run with
    the same --run-dir is refused and the first run's files stay as they were."""
    argv = ["compress", "lenet5", "--prune", "0.3", "--no-distill", "--output", str(tmp_path), "--run-dir", "nightly"]
    log_file = tmp_path / "run.log"
    assert main([*argv, *QUICK, "--json", "--log-file", str(log_file)]) == 0
    captured = capsys.readouterr()
    obj = json.loads(captured.out)
    run_dir = tmp_path / "nightly"
    assert obj["status"] == "ok" and obj["run_dir"] == str(run_dir) and obj["exit_code"] == 0
    assert Path(obj["ship"]).is_file() and Path(obj["ship"]).parent == run_dir
    assert {r["artifact"] for r in obj["results"]} >= {"model.onnx", "baseline.onnx"}
    assert "run folder" in captured.err and "run folder" in log_file.read_text()  # log lines: stderr and file
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert main([*argv, *QUICK]) == 2
    assert "already exists" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before

    assert main(["report", str(run_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["runs"][0]["run_dir"] == str(run_dir) and report["runs"][0]["results"] == obj["results"]


def test_quiet_hides_progress_and_the_log_file_keeps_it(tmp_path, capsys):
    import logging

    from edgekit.logs import LOGGER, configure_cli, progress_shown

    log_file = tmp_path / "edgekit.log"
    try:
        configure_cli(-1, str(log_file))
        LOGGER.info("stage line")
        LOGGER.warning("a warning")
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err == "a warning\n" and not progress_shown()
        text = log_file.read_text()
        assert "INFO edgekit: stage line" in text and "WARNING edgekit: a warning" in text
        configure_cli(0, None, json_output=True)  # --json: stdout is kept for the object
        LOGGER.info("progress")
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err == "progress\n" and progress_shown()
    finally:
        configure_cli(0)
        LOGGER.setLevel(logging.INFO)
    assert main(["--log-file", str(tmp_path / "missing" / "x.log"), "models"]) == 2
    assert "give a writable path to --log-file" in capsys.readouterr().err


def test_models_and_doctor_json(capsys):
    assert main(["models", "mobilenet_v3*", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    names = {m["name"] for m in obj["models"]}
    assert "mobilenet_v3_small" in names and all(m["macs"] > 0 and m["params"] > 0 for m in obj["models"])
    assert obj["aliases"]["mobilenet_v3"] == "mobilenet_v3_small"
    assert main(["doctor", "--json"]) == 0
    assert "onnxruntime_providers" in json.loads(capsys.readouterr().out)


def test_completion_is_offered(capsys):
    assert main(["--help"]) == 0
    assert "--install-completion" in capsys.readouterr().out


def test_recipe_commands(tmp_path, capsys):
    from edgekit.recipe import Recipe, from_dict
    from edgekit.recipe_schema import json_schema

    assert main(["recipe", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema()
    assert main(["recipe", "defaults"]) == 0
    assert from_dict(yaml.safe_load(capsys.readouterr().out), "defaults") == Recipe()
    bad = tmp_path / "bad.yaml"
    bad.write_text("prune:\n  ratoi: 0.3\n  importance: foo\ndistil: {}\n")
    assert main(["recipe", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "3 problems" in err and "did you mean 'ratio'" in err and "did you mean 'distill'" in err
    assert len(err.splitlines()) == 1
    assert main(["recipe", "check", str(ROOT / "recipes" / "mobilenet_v3_fashion_mnist.yaml"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recipe"]["model"]["name"] == "mobilenet_v3"


def test_profile_command(tmp_path, capsys):
    import edgekit
    from edgekit.export.onnx_file import save_onnx, to_onnx

    path = tmp_path / "lenet.onnx"
    model = edgekit.create_model("lenet5", num_classes=10, in_chans=1, small_input=True).eval()
    save_onnx(to_onnx(model, (1, 28, 28), 17, simplify=False), path)
    assert main(["profile", str(path), "--runs", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    convs = [r for r in result["rows"] if r["op_type"] == "Conv"]
    assert convs and all(r["macs"] > 0 for r in convs) and result["runs"] == 3
    assert main(["profile", str(path), "--runs", "3", "--top", "2"]) == 0
    assert "MAC/B" in capsys.readouterr().out
    assert main(["profile", str(tmp_path / "missing.onnx")]) == 2
