#!/usr/bin/env bash
# `ansible-test sanity` for the collection rhizome.pg (called by `make lint-ansible`).
#
# Reproducible offline apart from pip: everything ansible-test needs is prepared once
# and cached under .ansible/ (git-ignored); a second run only copies the collection
# and runs the tests.
#
#   .ansible/sanity-venv    ansible-core (the same version as .venv) on $SYSTEM_PYTHON;
#                           ansible-test runs from here with --local.
#   .ansible/sanity-wheels  wheels for every sanity requirement file of that ansible-test
#                           (ansible_test/_data/requirements/sanity.*.txt, exact pins)
#                           and for the pip version its sanity environments bootstrap.
#   .ansible/sanity-home    HOME of ansible-test. ansible-test builds one virtual
#                           environment per sanity test under ~/.ansible/test/venv and
#                           installs its requirements with pip, passing pip no environment
#                           variables but HOME and PATH. So this HOME holds
#                           - .config/pip/pip.conf: no index, only the wheelhouse above,
#                             so those installs never touch the network and never depend
#                             on how the machine reaches PyPI (PIP_* variables, proxies);
#                           - .ansible/test/cache/get_pip_<version>.py: a stand-in for the
#                             pip bootstrap script ansible-test would otherwise download
#                             from ci-files.testing.ansible.com (see TESTING.md);
#                           - .ansible/test/venv: the per-test environments, kept between runs.
#
# The collection is copied (not linked) to a temporary .../ansible_collections/rhizome/pg:
# ansible-test needs that path, and must see neither .venv, src/, bench/ nor the pytest
# suites in tests/ (it would read tests/integration as integration targets).
#
# Environment: SYSTEM_PYTHON (default /usr/bin/python3), ANSIBLE_CORE_VERSION (default:
# the version installed in .venv), RHIZOME_SANITY_KEEP=1 keeps the temporary copy.
# Extra arguments go to ansible-test, e.g. `bash scripts/ansible-sanity.sh --test pep8`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd -P)
system_python=${SYSTEM_PYTHON:-/usr/bin/python3}
state="$root/.ansible"
venv="$state/sanity-venv"
wheels="$state/sanity-wheels"
sanity_home="$state/sanity-home"
# Bump when the preparation below changes, so that existing caches are rebuilt.
setup_revision=1

log() { printf 'ansible-sanity: %s\n' "$*" >&2; }

if [ -n "${ANSIBLE_CORE_VERSION:-}" ]; then
    core_version=$ANSIBLE_CORE_VERSION
elif [ -x "$root/.venv/bin/python" ]; then
    core_version=$("$root/.venv/bin/python" -c \
        'import importlib.metadata as m; print(m.version("ansible-core"))')
else
    log "no .venv: run 'make venv' first, or set ANSIBLE_CORE_VERSION"
    exit 1
fi

# ansible-test writes the path of each test environment's python into the shebang of the
# scripts pip installs there; Linux cuts shebangs at 127 characters. The longest such path
# is $HOME/.ansible/test/venv/sanity.validate-modules/3.11/<8 hex>/bin/python; with a deep
# checkout, use a shorter HOME outside the repository.
if [ $(( ${#sanity_home} + 70 )) -gt 127 ]; then
    sanity_home="${XDG_CACHE_HOME:-$HOME/.cache}/rhizome-sanity-home"
fi

stamp="$venv/.rhizome-sanity"
wanted_stamp="revision=$setup_revision ansible-core=$core_version python=$system_python home=$sanity_home"

prepare() {
    log "preparing $venv (ansible-core $core_version) and the wheelhouse; once only"
    rm -rf "$venv" "$wheels" "$sanity_home"
    "$system_python" -m venv "$venv"
    local pip=("$venv/bin/python" -m pip --disable-pip-version-check)
    "${pip[@]}" install --quiet "ansible-core==$core_version"

    local requirements pip_version
    requirements=$("$venv/bin/python" -c \
        'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_data", "requirements"))')
    # The pip version ansible-test bootstraps into each sanity environment.
    pip_version=$("$venv/bin/python" -c \
        'import types; from ansible_test._internal.python_requirements import get_venv_packages as g; print(g(types.SimpleNamespace(version="3.11"))["pip"])')

    mkdir -p "$wheels"
    "${pip[@]}" wheel --quiet --wheel-dir "$wheels" "pip==$pip_version"
    # One resolution per file: each is a complete, pinned set of its own.
    local file
    for file in "$requirements"/sanity.*.txt; do
        "${pip[@]}" wheel --quiet --wheel-dir "$wheels" -r "$file"
    done

    mkdir -p "$sanity_home/.config/pip" "$sanity_home/.ansible/test/cache"
    cat > "$sanity_home/.config/pip/pip.conf" <<EOF
[global]
no-index = true
find-links = $wheels
disable-pip-version-check = true
EOF
    # Run by ansible-test in a fresh environment without pip, with the arguments of
    # get-pip.py (e.g. --disable-pip-version-check pip==24.2 --no-setuptools --no-wheel):
    # install pip with pip's own wheel from the wheelhouse.
    cat > "$sanity_home/.ansible/test/cache/get_pip_${pip_version//./_}.py" <<EOF
"""Offline stand-in for ansible-test's get-pip.py (written by scripts/ansible-sanity.sh)."""

import glob
import subprocess
import sys

WHEELS = "$wheels"
pip_wheel = glob.glob(WHEELS + "/pip-$pip_version-*.whl")[0]
arguments = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
command = [sys.executable, pip_wheel + "/pip", "install", "--no-index", "--find-links", WHEELS]
sys.exit(subprocess.run(command + arguments, check=False).returncode)
EOF
    echo "$wanted_stamp" > "$stamp"
    log "prepared in ${SECONDS}s"
}

if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted_stamp" ]; then
    prepare
fi

python_version=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

work=$(mktemp -d "${TMPDIR:-/tmp}/rhizome-sanity.XXXXXX")
if [ "${RHIZOME_SANITY_KEEP:-0}" = 1 ]; then
    log "keeping $work"
else
    trap 'rm -rf "$work"' EXIT
fi
collection="$work/ansible_collections/rhizome/pg"
mkdir -p "$collection"

# What the collection is made of; everything else in the repository (the Python package,
# its tests, benchmarks, molecule, inventories, scripts) is checked by other tools.
content=()
for path in galaxy.yml meta plugins roles playbooks docs README.md LICENSE COPYING \
    CHANGELOG.rst CHANGELOG.md changelogs tests/config.yml tests/sanity; do
    if [ -e "$root/$path" ]; then
        content+=("$path")
    fi
done
tar -C "$root" --exclude=__pycache__ --exclude='*.pyc' --exclude='*.retry' -cf - "${content[@]}" \
    | tar -C "$collection" -xf -

# Skipped tests (both need a program Debian 12 does not bring: a run must not depend on
# what happens to be installed, and the collection has no shell or PowerShell files):
#   shellcheck - the shellcheck program (not in scripts/install-system-deps.sh);
#   pslint     - PowerShell and PSScriptAnalyzer, from Microsoft's repository and the
#                PowerShell Gallery.
# Every other test runs: ansible-doc, compile, import, pep8, pylint, validate-modules,
# yamllint, runtime-metadata, symlinks, shebang, ... (`ansible-test sanity --list-tests`).
cd "$collection"
log "ansible-test sanity (ansible-core $core_version, Python $python_version) in $collection"
status=0
HOME="$sanity_home" PATH="$venv/bin:$PATH" "$venv/bin/ansible-test" sanity --local \
    --python "$python_version" --skip-test shellcheck --skip-test pslint "$@" || status=$?
if [ "$status" -ne 0 ]; then
    log "FAILED (exit $status) after ${SECONDS}s; the paths above are relative to the collection root"
else
    log "passed in ${SECONDS}s"
fi
exit "$status"
