#!/usr/bin/env bash
# Install edgekit and its Python dependencies without letting pip replace the platform's torch.
#
# Both images call this script (docker/Dockerfile.jetson, docker/Dockerfile.gpu); it also works on a
# Jetson or an x86 machine outside Docker. The order is what keeps torch safe:
#   1. torch        kept if already installed; else NVIDIA's Jetson wheel (--no-deps, from the Jetson
#                   index or a .whl) on Jetson, or PyPI's torch (a CUDA build on Linux x86_64) elsewhere
#   2. onnxruntime  kept if any build is installed; else onnxruntime-gpu (Jetson index on Jetson, PyPI)
#   3. the requirements of what step 1-2 installed with --no-deps, then edgekit's own requirements
#      (and --extras), each only if not already satisfied, under a constraints file that pins torch,
#      torchvision and onnxruntime to the installed versions: pip fails rather than swap them
#   4. edgekit itself with --no-deps (its metadata asks for `onnxruntime`, which would add the CPU
#      build next to onnxruntime-gpu)
#   5. verify: import edgekit, torch, onnxruntime; `edgekit --version`
# Run `docker/install.sh --help` for the options. Exit codes: 0 done, 1 a step failed, 2 bad usage.
set -euo pipefail

JETSON_INDEX_DEFAULT=https://pypi.jetson-ai-lab.io/jp6/cu126
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  cat <<EOF
usage: docker/install.sh [options]

Install edgekit (the source tree above this script) and its Python dependencies, keeping the
platform's torch. Prints every command it runs, prefixed with "+ ".

options:
  --python PATH        interpreter to install into (default: python3; env EDGEKIT_PYTHON)
  --venv DIR           create DIR with \`python -m venv --system-site-packages\` if missing (so apt's
                       TensorRT bindings stay visible) and install into it
  --platform P         auto | jetson | x86 (default auto: jetson on an L4T system; env EDGEKIT_PLATFORM).
                       x86 means "torch and onnxruntime-gpu from PyPI"
  --torch SRC          auto | skip | pypi | INDEX-URL | WHEEL (.whl path or URL) (default auto; env
                       EDGEKIT_TORCH). An installed torch is always kept: auto installs only when torch
                       is missing, from the Jetson index on jetson and from PyPI on x86. pypi is refused
                       on jetson (PyPI has no torch for Jetson's GPU)
  --torch-spec SPEC    version range for torch (default: edgekit's, read from pyproject.toml)
  --jetson-index URL   NVIDIA's Jetson wheel index (default $JETSON_INDEX_DEFAULT;
                       env EDGEKIT_JETSON_INDEX): JetPack 6 / L4T r36, CUDA 12.6, Python 3.10
  --onnxruntime KIND   auto | gpu | cpu | skip (default auto = gpu when none is installed; an
                       installed onnxruntime or onnxruntime-gpu is kept)
  --extras LIST        comma-separated extras of edgekit to install too, e.g. zoo ("" for none)
  --editable           install edgekit in editable mode (pip install -e)
  --deps-only          stop after the dependencies (steps 1-3): needs only pyproject.toml, so an image
                       can cache this layer and rerun the script after copying the code
  --src DIR            edgekit source tree (default: $(dirname "$HERE"))
  --require-gpu-stack  fail the verify step unless torch is a CUDA build, onnxruntime has a CUDA or
                       TensorRT provider and tensorrt imports (the Dockerfiles pass this)
  --dry-run            print the commands without running them
  -h, --help           this help
EOF
}

say() { echo "install.sh: $*"; }
die() { echo "install.sh: error: $*" >&2; exit 1; }
usage_error() { echo "install.sh: error: $*; see docker/install.sh --help" >&2; exit 2; }

# ---- options ----------------------------------------------------------------------------------
PYTHON=${EDGEKIT_PYTHON:-python3}
VENV=""
PLATFORM=${EDGEKIT_PLATFORM:-auto}
TORCH=${EDGEKIT_TORCH:-auto}
TORCH_SPEC=${EDGEKIT_TORCH_SPEC:-}
JETSON_INDEX=${EDGEKIT_JETSON_INDEX:-$JETSON_INDEX_DEFAULT}
ORT=auto
EXTRAS=""
EDITABLE=0
SRC=$(dirname "$HERE")
REQUIRE_GPU=0
DEPS_ONLY=0
DRY_RUN=0

need_value() { [[ $# -ge 2 && -n $2 && $2 != --* ]] || usage_error "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --python) need_value "$@"; PYTHON=$2; shift 2 ;;
    --venv) need_value "$@"; VENV=$2; shift 2 ;;
    --platform) need_value "$@"; PLATFORM=$2; shift 2 ;;
    --torch) need_value "$@"; TORCH=$2; shift 2 ;;
    --torch-spec) need_value "$@"; TORCH_SPEC=$2; shift 2 ;;
    --jetson-index) need_value "$@"; JETSON_INDEX=$2; shift 2 ;;
    --onnxruntime) need_value "$@"; ORT=$2; shift 2 ;;
    --extras) [[ $# -ge 2 ]] || usage_error "--extras needs a value"; EXTRAS=$2; shift 2 ;;
    --editable) EDITABLE=1; shift ;;
    --deps-only) DEPS_ONLY=1; shift ;;
    --src) need_value "$@"; SRC=$2; shift 2 ;;
    --require-gpu-stack) REQUIRE_GPU=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
done

case $PLATFORM in auto | jetson | x86) ;; *) usage_error "--platform must be auto, jetson or x86 (got '$PLATFORM')" ;; esac
case $ORT in auto | gpu | cpu | skip) ;; *) usage_error "--onnxruntime must be auto, gpu, cpu or skip (got '$ORT')" ;; esac
case $TORCH in
  auto | skip | pypi | http://* | https://* | file://*) ;;
  *.whl) [[ -f $TORCH ]] || usage_error "--torch $TORCH: no such wheel file" ;;
  *) usage_error "--torch must be auto, skip, pypi, an index URL or a .whl path or URL (got '$TORCH')" ;;
esac
case $JETSON_INDEX in http://* | https://* | file://*) ;; *) usage_error "--jetson-index must be a URL (got '$JETSON_INDEX')" ;; esac
[[ -f $SRC/pyproject.toml ]] || usage_error "--src $SRC has no pyproject.toml: give the edgekit source tree"
SRC=$(cd "$SRC" && pwd)

if [[ $PLATFORM == auto ]]; then
  if [[ $(uname -m) == aarch64 && (-e /etc/nv_tegra_release || -d /usr/lib/aarch64-linux-gnu/tegra) ]]; then
    PLATFORM=jetson
  else
    PLATFORM=x86
  fi
fi
[[ $PLATFORM == jetson && $TORCH == pypi ]] &&
  usage_error "--torch pypi on jetson would install a torch without Jetson GPU support: give NVIDIA's index or wheel, or auto"

# ---- helpers ----------------------------------------------------------------------------------
# show: the command as one line, quoted only where needed; run: show, then run unless --dry-run.
show() {
  local out="+" a
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then out+=" $a"; else out+=" '$a'"; fi
  done
  echo "$out"
}
run() {
  show "$@"
  [[ $DRY_RUN == 1 ]] && return 0
  "$@"
}
# step DESCRIPTION HINT -- CMD...: run CMD; on failure one line that names the step and the fix.
step() {
  local what=$1 hint=$2 rc=0
  shift 3
  run "$@" || rc=$?
  [[ $rc == 0 ]] || die "$what failed (exit $rc): $hint"
}

# Small queries answered by the target interpreter itself (its packages, its version). packaging and
# a TOML reader come from pip's vendored copies when not installed (Python 3.10 has no tomllib).
IFS= read -r -d '' HELPER <<'PYEOF' || true
import json, os, platform, sys
# `python -c` puts the working directory first on sys.path: a source tree there (with a stale
# edgekit.egg-info) would answer for the installed package.
sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != os.getcwd()]
from importlib import metadata
try:
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.specifiers import SpecifierSet
    from pip._vendor.packaging.utils import canonicalize_name

def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None

def pyproject(src):
    try:
        import tomllib
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError:
            from pip._vendor import tomli as tomllib
    with open(os.path.join(src, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]

def fmt(req):
    extras = "[" + ",".join(sorted(req.extras)) + "]" if req.extras else ""
    return f"{req.name}{extras}{req.specifier}"

def missing(reqs, extras, skip):
    """Requirements (markers evaluated) that the environment does not satisfy, minus skipped names."""
    out = []
    for text in reqs:
        req = Requirement(text)
        if canonicalize_name(req.name) in skip:
            continue
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ["", *extras]):
            continue
        have = version(req.name)
        if have is None or not req.specifier.contains(have, prereleases=True):
            out.append(fmt(req))
    return out

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "versions":                    # versions NAME... -> NAME=VERSION lines (empty: missing)
    for name in args:
        print(f"{name}={version(name) or ''}")
elif cmd == "check":                     # check SRC EXTRAS -> errors, or torch spec, onnxruntime spec
    #                                      and whether edgekit (with the extras) needs torchvision
    proj = pyproject(args[0])
    spec = SpecifierSet(proj.get("requires-python", ""))
    if not spec.contains(platform.python_version(), prereleases=True):
        print(f"{sys.executable} is Python {platform.python_version()}; edgekit needs {spec}: pass --python")
        sys.exit(1)
    known = sorted(proj.get("optional-dependencies", {}))
    for e in filter(None, args[1].split(",")):
        if e not in known:
            print(f"unknown extra '{e}': edgekit has {', '.join(known)}")
            sys.exit(2)
    reqs = [Requirement(r) for r in proj["dependencies"]]
    specs = {canonicalize_name(r.name): str(r.specifier) for r in reqs}
    for e in filter(None, args[1].split(",")):
        reqs += [Requirement(r) for r in proj.get("optional-dependencies", {}).get(e, [])]
    print(specs.get("torch", ""))
    print(specs.get("onnxruntime", ""))
    print("yes" if any(canonicalize_name(r.name) == "torchvision" for r in reqs) else "no")
elif cmd == "missing":                   # missing SRC EXTRAS SKIP | missing --dist NAME SKIP
    if args[0] == "--dist":
        reqs, extras = metadata.requires(args[1]) or [], []
    else:
        proj = pyproject(args[0])
        extras = list(filter(None, args[1].split(",")))
        reqs = list(proj["dependencies"])
        for e in extras:
            reqs += proj.get("optional-dependencies", {}).get(e, [])
    print("\n".join(missing(reqs, extras, {canonicalize_name(s) for s in args[2].split(",") if s})))
elif cmd == "installed-from":            # installed-from SRC -> editable | copy | (nothing)
    try:
        dist = metadata.distribution(pyproject(args[0])["name"])
    except metadata.PackageNotFoundError:
        sys.exit(0)
    info = json.loads(dist.read_text("direct_url.json") or "{}")
    url = info.get("url", "")
    if url.startswith("file://") and os.path.realpath(url[7:]) == os.path.realpath(args[0]):
        same = dist.version == pyproject(args[0])["version"]
        print(("editable" if info.get("dir_info", {}).get("editable") else "copy") if same else "")
elif cmd == "verify":                    # verify SRC REQUIRE_GPU -> one line of versions, or errors
    require_gpu = args[1] == "1"
    problems, notes = [], []
    mods = {}
    for name in ("edgekit", "torch", "onnxruntime"):
        try:
            mods[name] = __import__(name)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or ["not installed"])[0][:160]
            problems.append(f"cannot import {name} ({exc.__class__.__name__}: {first})")
    if version("onnxruntime") and version("onnxruntime-gpu"):
        problems.append("both onnxruntime and onnxruntime-gpu are installed (one module, two builds): "
                        "pip uninstall -y onnxruntime onnxruntime-gpu, then run this script again")
    try:
        import tensorrt
        trt = getattr(tensorrt, "__version__", None) or "placeholder package"
    except Exception as exc:
        trt = None
        if require_gpu:
            problems.append(f"cannot import tensorrt ({exc.__class__.__name__}): the base image's TensorRT Python bindings are missing")
    parts = []
    if "edgekit" in mods:
        parts.append(f"edgekit {getattr(mods['edgekit'], '__version__', '?')}")
    if "torch" in mods:
        torch = mods["torch"]
        cuda = torch.version.cuda
        parts.append(f"torch {torch.__version__} ({'CUDA ' + cuda if cuda else 'CPU build'})")
        if require_gpu and not cuda:
            problems.append(f"torch {torch.__version__} is a CPU build: uninstall it and install a CUDA build (--torch)")
    if "onnxruntime" in mods:
        ort = mods["onnxruntime"]
        providers = [p for p in ort.get_available_providers() if p != "CPUExecutionProvider"]
        parts.append(f"onnxruntime {ort.__version__} ({', '.join(providers) or 'CPU only'})")
        if require_gpu and not {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(providers):
            problems.append(f"onnxruntime {ort.__version__} has no CUDA or TensorRT provider: install onnxruntime-gpu")
    parts.append(f"tensorrt {trt}" if trt else "tensorrt not importable")
    # Installed with --no-deps, so pip never compared them with edgekit's ranges: do it here.
    try:
        edgekit_reqs = metadata.requires(pyproject(args[0])["name"]) or []
    except metadata.PackageNotFoundError:
        edgekit_reqs = []
    for text in edgekit_reqs:
        req = Requirement(text)
        if req.marker or canonicalize_name(req.name) not in ("torch", "onnxruntime"):
            continue
        have = version(req.name) or (version("onnxruntime-gpu") if req.name == "onnxruntime" else None)
        if have and not req.specifier.contains(have, prereleases=True):
            notes.append(f"{req.name} {have} is outside edgekit's range {req.specifier}: edgekit may fail where it relies on newer features")
    for n in notes:
        print(f"install.sh: warning: {n}", file=sys.stderr)
    for p in problems:
        print(f"install.sh: error: verify: {p}", file=sys.stderr)
    print(" | ".join(parts))
    sys.exit(1 if problems else 0)
PYEOF

pyq() { "$PY" -c "$HELPER" "$@"; }
declare -A HAVE  # installed versions of the packages this script keeps pinned ("" = not installed)
refresh() {
  local line
  while IFS= read -r line; do HAVE[${line%%=*}]=${line#*=}; done < <(pyq versions torch torchvision onnxruntime onnxruntime-gpu)
}

# ---- interpreter ------------------------------------------------------------------------------
BASE_PY=$(command -v "$PYTHON" 2>/dev/null) || die "no Python at '$PYTHON': install python3 or pass --python PATH"
PY=$BASE_PY
if [[ -n $VENV ]]; then
  if [[ ! -x $VENV/bin/python ]]; then
    step "creating the virtual environment $VENV" "install python3-venv (apt) or pass --python without --venv" -- \
      "$BASE_PY" -m venv --system-site-packages "$VENV"
  fi
  # A dry run does not create the venv: the base interpreter answers for it (system site packages).
  if [[ -x $VENV/bin/python ]]; then PY=$VENV/bin/python; fi
fi
"$PY" -m pip --version >/dev/null 2>&1 || die "$PY has no pip: install python3-pip, or use --venv DIR"
rc=0
msg=$(pyq check "$SRC" "$EXTRAS") || rc=$?
if [[ $rc == 2 ]]; then usage_error "$msg"; elif [[ $rc != 0 ]]; then die "${msg:-could not read $SRC/pyproject.toml}"; fi
{ read -r spec; read -r ORT_SPEC; read -r NEEDS_TORCHVISION; } <<<"$msg"
[[ -n $TORCH_SPEC ]] || TORCH_SPEC=$spec
refresh
PIP=("$PY" -m pip install --no-input)
mode=""
if [[ $DRY_RUN == 1 ]]; then mode=", dry run"; fi
say "platform $PLATFORM, python $PY, source $SRC$mode"

NO_DEPS=()   # what was installed with --no-deps: its own requirements are installed in step 3

# ---- 1. torch ---------------------------------------------------------------------------------
have=${HAVE[torch]}
if [[ $TORCH == skip ]]; then
  say "torch: skipped (--torch skip); installed: ${have:-none}"
elif [[ -n $have ]]; then
  say "torch $have is installed: kept (pip uninstall torch first to replace it)"
else
  src=$TORCH
  if [[ $src == auto && $PLATFORM == jetson ]]; then src=$JETSON_INDEX; elif [[ $src == auto ]]; then src=pypi; fi
  if [[ $src == pypi ]]; then
    step "installing torch from PyPI" "check the network, or pass --torch INDEX-URL" -- \
      "${PIP[@]}" "torch$TORCH_SPEC"
  elif [[ $src == *.whl ]]; then
    step "installing the torch wheel $src" "check the path or URL of the wheel (cp310, aarch64 for JetPack 6)" -- \
      "${PIP[@]}" --no-deps "$src"
    NO_DEPS+=(torch)
  else
    step "installing torch from $src" "check the index URL (for JetPack 6: $JETSON_INDEX_DEFAULT), or give a .whl" -- \
      "${PIP[@]}" --no-deps --index-url "$src" "torch$TORCH_SPEC"
    NO_DEPS+=(torch)
  fi
fi

# torchvision (the zoo extra) must match torch's build: on Jetson it comes from the same index.
if [[ $PLATFORM == jetson && $NEEDS_TORCHVISION == yes && -z ${HAVE[torchvision]} ]]; then
  step "installing torchvision from $JETSON_INDEX" "check --jetson-index" -- \
    "${PIP[@]}" --no-deps --index-url "$JETSON_INDEX" torchvision
  NO_DEPS+=(torchvision)
fi

# ---- 2. onnxruntime ---------------------------------------------------------------------------
ort_have=""
for name in onnxruntime-gpu onnxruntime; do
  if [[ -n ${HAVE[$name]} ]]; then ort_have="$name ${HAVE[$name]}"; break; fi
done
if [[ $ORT == skip ]]; then
  say "onnxruntime: skipped (--onnxruntime skip); installed: ${ort_have:-none}"
elif [[ -n $ort_have ]]; then
  say "$ort_have is installed: kept (pip uninstall it first to replace it)"
elif [[ $ORT == cpu ]]; then
  step "installing onnxruntime" "check the network" -- "${PIP[@]}" "onnxruntime$ORT_SPEC"
elif [[ $PLATFORM == jetson ]]; then
  step "installing onnxruntime-gpu from $JETSON_INDEX" "check --jetson-index, or pass --onnxruntime cpu" -- \
    "${PIP[@]}" --no-deps --index-url "$JETSON_INDEX" onnxruntime-gpu
  NO_DEPS+=(onnxruntime-gpu)
else
  step "installing onnxruntime-gpu from PyPI" "check the network, or pass --onnxruntime cpu" -- \
    "${PIP[@]}" "onnxruntime-gpu$ORT_SPEC"
fi

# ---- 3. requirements, with torch and onnxruntime pinned ----------------------------------------
CONSTRAINTS=$(mktemp "${TMPDIR:-/tmp}/edgekit-constraints.XXXXXX")
trap 'rm -f "$CONSTRAINTS"' EXIT
if [[ $DRY_RUN == 0 ]]; then refresh; fi
for name in torch torchvision onnxruntime onnxruntime-gpu; do
  if [[ -n ${HAVE[$name]} ]]; then echo "$name==${HAVE[$name]}" >>"$CONSTRAINTS"; fi
done
if [[ $DRY_RUN == 1 ]]; then
  say "constraints: $(tr '\n' ' ' <"$CONSTRAINTS")(and what steps 1-2 install, at its version)"
fi
# Never left to pip: torch and onnxruntime (steps 1-2), and torchvision on Jetson (Jetson index).
HANDLED=torch,onnxruntime,onnxruntime-gpu
if [[ $PLATFORM == jetson ]]; then HANDLED+=,torchvision; fi

install_missing() {  # install_missing WHAT QUERY...: pip-install what the query lists, if anything
  local what=$1 out
  shift
  out=$(pyq missing "$@") || die "could not read the requirements of $what"
  if [[ -z $out ]]; then
    say "$what: all satisfied"
    return 0
  fi
  mapfile -t reqs <<<"$out"
  step "installing $what" "pip's message above names the conflict; torch and onnxruntime stay pinned" -- \
    "${PIP[@]}" --constraint "$CONSTRAINTS" "${reqs[@]}"
}
for dist in ${NO_DEPS[@]+"${NO_DEPS[@]}"}; do
  if [[ $DRY_RUN == 1 && -z ${HAVE[$dist]} ]]; then
    show "${PIP[@]}" --constraint "$CONSTRAINTS" "<requirements of $dist, read from its metadata>"
  else
    install_missing "the requirements of $dist" --dist "$dist" "$HANDLED"
  fi
done
install_missing "edgekit's requirements${EXTRAS:+ (with $EXTRAS)}" "$SRC" "$EXTRAS" "$HANDLED"

if [[ $DEPS_ONLY == 1 ]]; then
  say "dependencies done (--deps-only): edgekit itself not installed, nothing verified"
  exit 0
fi

# ---- 4. edgekit -------------------------------------------------------------------------------
from=$(pyq installed-from "$SRC")
if [[ $EDITABLE == 1 && $from == editable ]]; then
  say "edgekit is installed in editable mode from $SRC: kept"
elif [[ $EDITABLE == 1 ]]; then
  step "installing edgekit (editable)" "pip's message above says why" -- "${PIP[@]}" --no-deps --editable "$SRC"
else
  step "installing edgekit" "pip's message above says why" -- "${PIP[@]}" --no-deps "$SRC"
fi

# ---- 5. verify --------------------------------------------------------------------------------
EDGEKIT_BIN=$(dirname "$PY")/edgekit
[[ -x $EDGEKIT_BIN ]] || EDGEKIT_BIN=$(command -v edgekit 2>/dev/null || echo edgekit)
show "$PY" -c 'import edgekit, torch, onnxruntime'
show "$EDGEKIT_BIN" --version
if [[ $DRY_RUN == 1 ]]; then
  say "dry run: nothing installed"
  exit 0
fi
line=$(pyq verify "$SRC" "$REQUIRE_GPU") || die "verify failed: see the lines above"
ver=$("$EDGEKIT_BIN" --version 2>&1) || die "'$EDGEKIT_BIN --version' failed: $ver"
say "verified: $line; \`edgekit --version\` says '$ver'"
