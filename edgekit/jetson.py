"""What a Jetson's latency depends on besides the software: module, L4T release (and the JetPack it
implies), power mode, and whether the clocks are locked. An unlocked Jetson scales its clocks with load,
so its latency figures wander and do not compare with other runs.

Every read goes through `root` (a filesystem root) and `run` (a command runner), so tests feed a fake
/etc, /proc and /sys from a temporary folder and a fake `nvpmodel`."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from edgekit.fileio import read_under

Runner = Callable[[list[str]], str]

LOCK_FIX = "sudo nvpmodel -m 0 && sudo jetson_clocks"

# L4T (Jetson Linux) release -> JetPack, from NVIDIA's release notes. Exact releases only: a release not
# listed says "unknown" rather than a guess (36.4.x patch releases map to different JetPacks).
JETPACK = {
    "38.2.0": "7.0",
    "36.4.4": "6.2.1",
    "36.4.3": "6.2",
    "36.4.0": "6.1",
    "36.3.0": "6.0",
    "36.2.0": "6.0 DP",
    "35.6.0": "5.1.4",
    "35.5.0": "5.1.3",
    "35.4.1": "5.1.2",
    "35.3.1": "5.1.1",
    "35.2.1": "5.1",
    "35.1.0": "5.0.2",
    "32.7.6": "4.6.6",
    "32.7.5": "4.6.5",
    "32.7.4": "4.6.4",
    "32.7.3": "4.6.3",
    "32.7.2": "4.6.2",
    "32.7.1": "4.6.1",
    "32.6.1": "4.6",
    "32.5.1": "4.5.1",
    "32.5.0": "4.5",
}

# devfreq names of Jetson GPUs: "17000000.gpu" (Orin, JetPack 6), "17000000.ga10b" (Orin, JetPack 5),
# "17000000.gv11b" (Xavier), "57000000.gpu" (Nano).
_GPU_DEVFREQ = re.compile(r"gpu|gv11b|ga10b|gp10b|gm20b", re.IGNORECASE)


def run_command(argv: list[str], timeout: float = 5.0) -> str:
    """stdout of argv. Raises FileNotFoundError when the command is absent, subprocess.TimeoutExpired
    and subprocess.CalledProcessError as subprocess does."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=True).stdout


def _path(root: str | Path, path: str) -> Path:
    return Path(root) / path.lstrip("/")


_read = read_under


def model(root: str | Path = "/") -> str | None:
    """The device-tree model ('NVIDIA Jetson AGX Orin Developer Kit'); the file ends with a NUL."""
    text = (_read(root, "/proc/device-tree/model") or "").replace("\x00", "").strip()
    return text or None


def is_jetson(root: str | Path = "/") -> bool:
    name = model(root) or ""
    return _path(root, "/etc/nv_tegra_release").is_file() or "Jetson" in name or "NVIDIA" in name


def parse_l4t(text: str) -> str | None:
    """'# R36 (release), REVISION: 4.0, GCID: ...' -> '36.4.0'."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)(?:\.(\d+))?", text)
    return f"{m[1]}.{m[2]}.{m[3] or 0}" if m else None


def l4t_release(root: str | Path = "/") -> str | None:
    """This machine's L4T release ('36.4.0'), None off Jetson: part of every TensorRT engine's stamp."""
    text = _read(root, "/etc/nv_tegra_release")
    return parse_l4t(text) if text else None


def jetpack(l4t: str | None) -> str:
    return JETPACK.get(l4t or "", "unknown")


def parse_nvpmodel(text: str) -> tuple[str, int | None] | None:
    """`nvpmodel -q` prints 'NV Power Mode: MAXN' and then the mode id on its own line (other lines,
    e.g. 'NV Fan Mode:quiet', may come first)."""
    lines = [line.strip() for line in text.splitlines()]
    for i, line in enumerate(lines):
        m = re.match(r"NV Power Mode\s*:\s*(.+)", line)
        if m:
            nxt = next((x for x in lines[i + 1 :] if x), "")
            return m[1].strip(), int(nxt) if nxt.isdigit() else None
    return None


def power_mode(run: Runner = run_command) -> dict:
    """{'power_mode': 'MAXN', 'power_mode_id': 0}, or 'unavailable (reason)' and None."""
    try:
        out = run(["nvpmodel", "-q"])
    except FileNotFoundError:
        reason = "nvpmodel not found"
    except subprocess.TimeoutExpired:
        reason = "nvpmodel -q timed out"
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()
        reason = f"nvpmodel -q failed with code {exc.returncode}" + (f": {detail[0][:100]}" if detail else "")
    except OSError as exc:
        reason = f"nvpmodel: {exc.__class__.__name__}: {exc}"
    else:
        parsed = parse_nvpmodel(out)
        if parsed:
            return {"power_mode": parsed[0], "power_mode_id": parsed[1]}
        reason = "nvpmodel -q printed no 'NV Power Mode' line"
    return {"power_mode": f"unavailable ({reason})", "power_mode_id": None}


def _freq_pair(folder: Path, low: str, high: str) -> tuple[int, int] | None:
    try:
        return int((folder / low).read_text().strip()), int((folder / high).read_text().strip())
    except (OSError, ValueError):
        return None


def _lock_state(pairs: dict[str, tuple[int, int]], unit: str) -> tuple[bool | None, str]:
    """(locked, text) for a set of {name: (min, max)}: locked means min == max for every one."""
    if not pairs:
        return None, "unknown (no frequency files)"
    loose = [(name, lo, hi) for name, (lo, hi) in pairs.items() if lo != hi]
    if not loose:
        freqs = sorted({hi for _, hi in pairs.values()})
        return True, f"locked at {', '.join(map(str, freqs))} {unit}"
    name, lo, hi = loose[0]
    more = f" (and {len(loose) - 1} more)" if len(loose) > 1 else ""
    return False, f"not locked: {name} min {lo} != max {hi} {unit}{more}"


def cpu_clocks(root: str | Path = "/") -> tuple[bool | None, str]:
    base = _path(root, "/sys/devices/system/cpu")
    dirs = sorted(base.glob("cpu[0-9]*/cpufreq"), key=lambda p: int(p.parent.name[3:]))
    pairs = {d.parent.name: p for d in dirs if (p := _freq_pair(d, "scaling_min_freq", "scaling_max_freq"))}
    return _lock_state(pairs, "kHz")


def gpu_clocks(root: str | Path = "/") -> tuple[bool | None, str]:
    # The same devfreq node shows up under /sys/class/devfreq (a link) and under the platform device;
    # resolve links so it counts once.
    found: dict[Path, Path] = {}
    for pattern in (
        "sys/class/devfreq/*",
        "sys/devices/platform/*gpu*/devfreq/*",
        "sys/devices/platform/*/*gpu*/devfreq/*",
    ):
        for d in Path(root).glob(pattern):
            if _GPU_DEVFREQ.search(d.name):
                found.setdefault(d.resolve(), d)
    pairs = {d.name: p for d in found.values() if (p := _freq_pair(d, "min_freq", "max_freq"))}
    return _lock_state(pairs, "Hz")


def probe(root: str | Path = "/", run: Runner = run_command) -> dict | None:
    """Jetson facts, or None when this is not a Jetson."""
    if not is_jetson(root):
        return None
    release = _read(root, "/etc/nv_tegra_release")
    l4t = parse_l4t(release) if release is not None else None
    cpu_locked, cpu_text = cpu_clocks(root)
    gpu_locked, gpu_text = gpu_clocks(root)
    states = (cpu_locked, gpu_locked)
    return {
        "model": model(root) or "unknown (no /proc/device-tree/model)",
        "l4t": l4t
        or (
            "unknown (no /etc/nv_tegra_release)" if release is None else "unknown (unrecognized /etc/nv_tegra_release)"
        ),
        "jetpack": jetpack(l4t),
        **power_mode(run),
        "cpu_clocks": cpu_text,
        "gpu_clocks": gpu_text,
        # False as soon as one is known to float; None when neither could be read.
        "clocks_locked": False if False in states else (True if True in states and None not in states else None),
    }


def warnings(info: dict | None) -> list[str]:
    if info and info["clocks_locked"] is False:
        return [
            "Jetson clocks are not locked: latency on an unlocked Jetson is not comparable with other runs; fix: "
            f"`{LOCK_FIX}`"
        ]
    return []
