#!/usr/bin/env bash
# Install edgekit and its Python dependencies without letting pip replace the platform's torch: the
# Dockerfiles' entry point, `docker/install.sh --help` for the options. The work is in docker/install.py
# (standard library only); this finds the Python to run it with, which is the one it installs into:
# --python PATH, else $EDGEKIT_PYTHON, else python3. Exit codes: 0 done, 1 a step failed, 2 bad usage.
set -euo pipefail

fail() { echo "install.sh: error: $*" >&2; exit 1; }

python=${EDGEKIT_PYTHON:-python3}
prev=""
for arg in "$@"; do
  # A missing value (--python --dry-run) is left to install.py, which reports bad usage.
  if [[ $prev == --python && -n $arg && $arg != -* ]]; then python=$arg; fi
  if [[ $arg == --python=?* ]]; then python=${arg#--python=}; fi
  prev=$arg
done
found=$(command -v "$python" 2>/dev/null) || fail "no Python at '$python': install python3 or pass --python PATH"
# Checked here: an older Python (JetPack 4's 3.6) would stop at install.py's syntax, with a traceback.
# -S (no site-packages): install.py needs only the standard library, so what it installs can't break it.
check='import sys; print("%d.%d" % sys.version_info[:2]); sys.exit(sys.version_info < (3, 10))'
version=$("$found" -S -c "$check") ||
  fail "$found is Python ${version:-?}; docker/install.py needs 3.10 or newer: pass --python PATH"
exec "$found" -S "$(dirname "${BASH_SOURCE[0]}")/install.py" "$@"
