"""`edgekit doctor`: the real command on this machine, torch's GPU states faked, and a fake Jetson (files
under tmp_path, a fake nvpmodel) so the Jetson branch is tested on any machine."""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

import pytest
import torch

from edgekit import doctor, envinfo, jetson
from edgekit.backends import tensorrt
from edgekit.cli import main

ORIN_RELEASE = (
    "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, "
    "EABI: aarch64, DATE: Fri Sep 13 04:36:44 UTC 2024\n"
)
NVPMODEL_MAXN = "NV Fan Mode:quiet\nNV Power Mode: MAXN\n0\n"


@pytest.fixture
def no_gpu_no_trt(monkeypatch):
    """The issue's bar (no GPU, no TensorRT) on any machine."""
    monkeypatch.setattr(tensorrt, "status", lambda: (False, "ModuleNotFoundError: No module named 'tensorrt'"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None, raising=False)


def fake_jetson(root, *, locked: bool, release: str | None = ORIN_RELEASE):
    """An Orin's files: release, device-tree model (NUL-terminated), 4 CPUs' cpufreq, GPU devfreq."""
    if release is not None:
        (root / "etc").mkdir(parents=True)
        (root / "etc/nv_tegra_release").write_text(release)
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\x00")
    for i in range(4):
        d = root / f"sys/devices/system/cpu/cpu{i}/cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_max_freq").write_text("2201600\n")
        (d / "scaling_min_freq").write_text("2201600\n" if locked or i else "729600\n")
    gpu = root / "sys/class/devfreq/17000000.gpu"
    gpu.mkdir(parents=True)
    (gpu / "max_freq").write_text("1300500000\n")
    (gpu / "min_freq").write_text("1300500000\n" if locked else "306000000\n")
    (root / "sys/class/devfreq/15820000.nvdla0").mkdir()  # not a GPU: ignored
    (root / "sys/class/devfreq/15820000.nvdla0/min_freq").write_text("1\n")
    (root / "sys/class/devfreq/15820000.nvdla0/max_freq").write_text("2\n")
    return root


def nvpmodel(output: str = NVPMODEL_MAXN):
    def run(argv):
        assert argv == ["nvpmodel", "-q"]
        return output

    return run


def missing(argv):
    raise FileNotFoundError(argv[0])


def test_cli_doctor_without_gpu_or_tensorrt(capsys, no_gpu_no_trt):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "tensorrt: unavailable (ModuleNotFoundError: No module named 'tensorrt')" in out
    assert "gpu: unavailable (CPU build of torch)" in out
    assert "cuda: unavailable (CPU build of torch)" in out
    assert f"torch: {torch.__version__}" in out
    assert "CPUExecutionProvider" in out


def test_cli_doctor_json(capsys, no_gpu_no_trt):
    assert main(["doctor", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {
        "edgekit",
        "python",
        "torch",
        "cuda",
        "cudnn",
        "onnx",
        "onnxruntime",
        "onnxruntime_providers",
        "onnxsim",
        "torch_pruning",
        "tensorrt",
        "gpu",
        "gpus",
        "cpu",
        "cpu_cores",
        "cpu_cores_total",
        "os",
        "platform",
        "jetson",
        "warnings",
    } <= set(info)
    assert info["tensorrt"].startswith("unavailable (") and info["gpus"] == []
    assert "CPUExecutionProvider" in info["onnxruntime_providers"]
    assert info["cpu_cores"] >= 1


def test_cuda_build_without_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "12.6")
    gpu = envinfo.cuda()
    assert gpu["gpu"].startswith("unavailable (no CUDA device; torch built for CUDA 12.6")
    assert gpu["cuda"] == gpu["gpu"] and gpu["gpus"] == []


def test_gpu_details_from_torch(monkeypatch, tmp_path):
    (tmp_path / "proc/driver/nvidia").mkdir(parents=True)
    (tmp_path / "proc/driver/nvidia/version").write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(
        torch.cuda,
        "get_device_properties",
        lambda i: SimpleNamespace(name="NVIDIA H200", major=9, minor=0, total_memory=150 * 2**30),
    )
    monkeypatch.setattr(torch.version, "cuda", "12.6")
    monkeypatch.setattr(torch.backends.cudnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90501)
    gpu = envinfo.cuda(tmp_path)
    assert gpu["cuda"] == "12.6" and gpu["cudnn"] == "9.5.1"
    assert gpu["gpus"] == [
        {"name": "NVIDIA H200", "compute_capability": "9.0", "memory_gib": 150.0, "driver": "550.54.15"}
    ]
    text = doctor.format_text({**doctor.collect(tmp_path, missing), **gpu})
    assert "gpu 0: NVIDIA H200, compute capability 9.0, 150.0 GiB, driver 550.54.15" in text


@pytest.mark.parametrize("version, text", [(8902, "8.9.2"), (90100, "9.1.0"), (None, None)])
def test_cudnn_version_encoding(version, text):
    assert envinfo._cudnn(version) == text


@pytest.mark.parametrize(
    "release, l4t, jetpack",
    [
        (ORIN_RELEASE, "36.4.0", "6.1"),
        ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64", "36.4.3", "6.2"),
        ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64", "35.4.1", "5.1.2"),
        ("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64", "32.7.1", "4.6.1"),
        ("# R36 (release), REVISION: 9.9", "36.9.9", "unknown"),
    ],
)
def test_l4t_release_and_jetpack(release, l4t, jetpack):
    assert jetson.parse_l4t(release) == l4t
    assert jetson.jetpack(l4t) == jetpack


def test_unrecognized_l4t():
    assert jetson.parse_l4t("garbage") is None and jetson.jetpack(None) == "unknown"


@pytest.mark.parametrize(
    "output, parsed",
    [
        (NVPMODEL_MAXN, ("MAXN", 0)),
        ("NV Power Mode: 15W\n1\n", ("15W", 1)),
        ("NV Power Mode: MODE_30W_ALL\n", ("MODE_30W_ALL", None)),
        ("nothing useful\n", None),
    ],
)
def test_parse_nvpmodel(output, parsed):
    assert jetson.parse_nvpmodel(output) == parsed


@pytest.mark.parametrize(
    "error, reason",
    [
        (FileNotFoundError("nvpmodel"), "unavailable (nvpmodel not found)"),
        (subprocess.TimeoutExpired(["nvpmodel", "-q"], 5), "unavailable (nvpmodel -q timed out)"),
        (
            subprocess.CalledProcessError(1, ["nvpmodel", "-q"], stderr="NVPM ERROR: failed to read PARAM\n"),
            "unavailable (nvpmodel -q failed with code 1: NVPM ERROR: failed to read PARAM)",
        ),
    ],
)
def test_power_mode_when_nvpmodel_fails(error, reason):
    def run(argv):
        raise error

    assert jetson.power_mode(run) == {"power_mode": reason, "power_mode_id": None}


def test_run_command_raises_file_not_found_for_a_missing_command():
    with pytest.raises(FileNotFoundError):
        jetson.run_command(["edgekit-no-such-command-7f3a"])


def test_locked_jetson(tmp_path):
    info = jetson.probe(fake_jetson(tmp_path, locked=True), nvpmodel())
    assert info == {
        "model": "NVIDIA Jetson AGX Orin Developer Kit",
        "l4t": "36.4.0",
        "jetpack": "6.1",
        "power_mode": "MAXN",
        "power_mode_id": 0,
        "cpu_clocks": "locked at 2201600 kHz",
        "gpu_clocks": "locked at 1300500000 Hz",
        "clocks_locked": True,
    }
    assert jetson.warnings(info) == []


def test_unlocked_jetson_warns(tmp_path):
    info = jetson.probe(fake_jetson(tmp_path, locked=False), nvpmodel())
    assert info["clocks_locked"] is False
    assert info["cpu_clocks"] == "not locked: cpu0 min 729600 != max 2201600 kHz"
    assert info["gpu_clocks"] == "not locked: 17000000.gpu min 306000000 != max 1300500000 Hz"
    [warning] = jetson.warnings(info)
    assert "not comparable" in warning and "sudo nvpmodel -m 0 && sudo jetson_clocks" in warning


def test_doctor_text_on_a_fake_jetson(tmp_path, no_gpu_no_trt):
    unlocked = doctor.format_text(doctor.collect(fake_jetson(tmp_path / "a", locked=False), nvpmodel()))
    assert "jetson: NVIDIA Jetson AGX Orin Developer Kit" in unlocked
    assert "l4t: 36.4.0 (JetPack 6.1)" in unlocked
    assert "power mode: MAXN (mode 0)" in unlocked
    assert "WARNING: Jetson clocks are not locked" in unlocked.splitlines()[-1]
    locked = doctor.format_text(doctor.collect(fake_jetson(tmp_path / "b", locked=True), missing))
    assert "power mode: unavailable (nvpmodel not found)" in locked
    assert "WARNING" not in locked


def test_jetson_detected_from_device_tree_alone(tmp_path):
    info = jetson.probe(fake_jetson(tmp_path, locked=True, release=None), missing)
    assert info["l4t"] == "unknown (no /etc/nv_tegra_release)" and info["jetpack"] == "unknown"
    assert info["power_mode"] == "unavailable (nvpmodel not found)"


def test_unreadable_clocks_are_unknown_not_a_warning(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text(ORIN_RELEASE)
    info = jetson.probe(tmp_path, missing)
    assert info["model"] == "unknown (no /proc/device-tree/model)"
    assert info["clocks_locked"] is None and info["cpu_clocks"].startswith("unknown")
    assert jetson.warnings(info) == []


def test_not_a_jetson(tmp_path):
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    assert jetson.probe(tmp_path, missing) is None
    assert jetson.probe(tmp_path / "empty", missing) is None


@pytest.mark.parametrize(
    "cpuinfo, name",
    [
        ("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n", "AMD EPYC 7B13"),
        ("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd42\n", "ARM Cortex-A78AE"),
        ("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xfff\n", "ARM CPU (implementer 0x41, part 0xfff)"),
    ],
)
def test_cpu_model(tmp_path, cpuinfo, name):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(cpuinfo)
    assert envinfo.cpu_model(tmp_path) == name


@pytest.mark.parametrize(
    "cpuinfo, features",
    [
        ("model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx f16c fma avx2 bmi2\n", "avx avx2 fma f16c"),
        (
            "model name\t: Intel Xeon\nflags\t\t: avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_int8\n",
            "avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_int8",
        ),
        ("CPU implementer\t: 0x41\nFeatures\t: fp asimd asimddp i8mm sve\n", "asimd asimddp i8mm sve"),
        ("model name\t: Old\nflags\t\t: fpu sse2\n", "none of the SIMD features edgekit lists"),
        ("model name\t: No flags\n", "unavailable (no /proc/cpuinfo flags)"),
    ],
)
def test_cpu_features_are_the_int8_and_fp32_kernel_features(tmp_path, cpuinfo, features):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(cpuinfo)
    assert envinfo.cpu_features(tmp_path) == features


@pytest.mark.parametrize(
    "features, fp32, int8",
    [
        ("avx avx2 fma f16c", "AVX2 FMA", "AVX2 without VNNI"),
        ("avx avx2 fma avx512f avx512bw avx512_vnni", "AVX-512 FMA", "AVX-512 VNNI"),
        ("avx avx2 fma avx_vnni", "AVX2 FMA", "AVX-VNNI"),
        ("avx avx2 fma avx512f avx512_vnni amx_int8", "AVX-512 FMA", "AMX-INT8"),
        ("asimd asimddp", "NEON FMA", "ARM dot product"),
        ("asimd asimddp i8mm", "NEON FMA", "ARM i8mm"),
        ("none of the SIMD features edgekit lists", "scalar or unknown", "scalar or unknown"),
    ],
)
def test_simd_paths_name_the_fp32_and_int8_instruction_path(features, fp32, int8):
    paths = envinfo.simd_paths(features)
    assert paths["fp32"].startswith(fp32) and paths["int8"].startswith(int8)
