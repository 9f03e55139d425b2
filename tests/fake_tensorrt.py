"""A recording stand-in for the `tensorrt` module, shaped after TensorRT 10's documented Python API
(and 11's, which lacks the precision builder flags). It lets the builder's logic (typing, flags,
profile, workspace, timing cache, stamp) be tested where TensorRT cannot be installed. It proves the
calls edgekit makes, not that TensorRT accepts them: that stays unverified without a real TensorRT."""

from __future__ import annotations

import enum
import types


def make(
    version: str = "10.3.0",
    weak_typing: bool = True,
    parse_ok: bool = True,
    build_ok: bool = True,
    cache_readable: bool = True,
    progress_monitor: bool = True,
) -> types.SimpleNamespace:
    """`progress_monitor`: model TensorRT >= 10's IProgressMonitor (a build then drives the monitor set on
    its config through two nested phases, and stops when step_complete returns False)."""
    calls: list[tuple] = []

    class IProgressMonitor:
        def __init__(self):
            calls.append(("IProgressMonitor.__init__",))

    class Logger:
        WARNING = "WARNING"

        def __init__(self, severity):
            calls.append(("Logger", severity))

    class TimingCache:
        def __init__(self, data: bytes):
            self.data = data

        def serialize(self):
            return memoryview(b"timing:" + self.data[-8:] if self.data else b"timing:new")

    class Profile:
        def set_shape(self, name, lo, opt, hi):
            calls.append(("profile", name, lo, opt, hi))

    class Config:
        builder_optimization_level = 3
        progress_monitor = None

        def set_memory_pool_limit(self, pool, size):
            calls.append(("workspace", pool.name, size))

        def set_flag(self, flag):
            calls.append(("flag", flag.name))

        def add_optimization_profile(self, profile):
            calls.append(("add_profile",))

        def create_timing_cache(self, data):
            calls.append(("create_timing_cache", bytes(data)))
            if data and not cache_readable:
                return None  # TensorRT returns None for a blob it cannot read
            return TimingCache(bytes(data))

        def set_timing_cache(self, cache, ignore_mismatch):
            calls.append(("set_timing_cache", ignore_mismatch))
            self.cache = cache
            return True

        def get_timing_cache(self):
            return self.cache

    class Network:
        def __init__(self, flags):
            self.flags = flags

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags=0):
            calls.append(("create_network", flags))
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            calls.append(("build", config.builder_optimization_level))
            if config.progress_monitor is not None and not _drive(config.progress_monitor):
                return None  # cancelled by the monitor
            return memoryview(b"ENGINE-" + version.encode()) if build_ok else None

    def _drive(monitor) -> bool:
        """Two outer steps, each running a nested three-step phase; False when the monitor cancelled. As
        documented, phase_finish is still called for every started phase when a build is cancelled."""
        monitor.phase_start("Building engine", None, 2)
        calls.append(("phase_start", "Building engine"))
        for outer in range(2):
            monitor.phase_start("Tactic selection", "Building engine", 3)
            ok = all(_step(monitor, "Tactic selection", inner) for inner in range(3))
            monitor.phase_finish("Tactic selection")
            if not ok or not _step(monitor, "Building engine", outer):
                monitor.phase_finish("Building engine")
                return False
        monitor.phase_finish("Building engine")
        calls.append(("phase_finish", "Building engine"))
        return True

    def _step(monitor, phase, step) -> bool:
        go_on = monitor.step_complete(phase, step)
        calls.append(("step", phase, step, go_on))
        return go_on

    class OnnxParser:
        num_errors = 0 if parse_ok else 1

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            calls.append(("parse", path))
            return parse_ok

        def get_error(self, i):
            return "In node 3 (Conv): unsupported weights"

    return types.SimpleNamespace(
        __version__=version,
        Logger=Logger,
        **({"IProgressMonitor": IProgressMonitor} if progress_monitor else {}),
        Builder=Builder,
        OnnxParser=OnnxParser,
        # Enums made here, inside the call: their members depend on the version modelled.
        # TensorRT 11: every network is strongly typed, so the creation flag is not needed (modelled as absent).
        NetworkDefinitionCreationFlag=enum.IntEnum(
            "NetworkDefinitionCreationFlag", {"STRONGLY_TYPED": 5} if weak_typing else {"_RESERVED": 9}
        ),
        BuilderFlag=enum.Enum("BuilderFlag", ["FP16", "INT8", "REFIT"] if weak_typing else ["REFIT"]),
        MemoryPoolType=enum.Enum("MemoryPoolType", ["WORKSPACE"]),
        calls=calls,
    )
