#!/usr/bin/env bash
# The unit tests against the lowest versions pyproject.toml allows: a second venv,
# .venv-floor, with every runtime dependency at exactly its '>=' floor
# (scripts/floor_versions.py), the package and the unit-test tools. A floor that no
# longer works fails here, so the floors in pyproject say the truth.
# scripts/test.sh runs it after the main suite; it also runs on its own.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-floor
python3 -m venv "$venv"
python3 scripts/floor_versions.py constraints >"$venv/constraints-floor.txt"
mapfile -t tools < <(python3 scripts/floor_versions.py tools)
"$venv/bin/pip" install --quiet --upgrade pip
# The constraints pin the runtime dependencies; a tool that needs newer ones fails the
# install, which says the floor must move.
"$venv/bin/pip" install --quiet -c "$venv/constraints-floor.txt" -e . "${tools[@]}"
echo "floor versions:" $(cat "$venv/constraints-floor.txt")
"$venv/bin/python" scripts/floor_versions.py check "$venv/constraints-floor.txt"

# The unit tests: not the end-to-end ones, nor those of artefacts that do not import
# the runtime dependencies' floors in any new way (dashboards, rules, deploy files,
# the container), nor the tests that drive whole exporter processes through faults
# (the main run covers them; they use the dependencies as the unit tests do), nor the
# SDK contract (a test-only dependency).
PATH="$PWD/$venv/bin:$PATH" "$venv/bin/python" -m pytest -q -p no:cacheprovider -m "not e2e" \
  --ignore=tests/test_bench_smoke.py \
  --ignore=tests/test_compose.py \
  --ignore=tests/test_contract.py \
  --ignore=tests/test_dashboard_content.py \
  --ignore=tests/test_dashboard_generator.py \
  --ignore=tests/test_dashboard_provisioning.py \
  --ignore=tests/test_dashboard_queries.py \
  --ignore=tests/test_dashboard_structure.py \
  --ignore=tests/test_docker.py \
  --ignore=tests/test_docs.py \
  --ignore=tests/test_e2e.py \
  --ignore=tests/test_faults.py \
  --ignore=tests/test_gen_kubernetes.py \
  --ignore=tests/test_hostile.py \
  --ignore=tests/test_kubernetes.py \
  --ignore=tests/test_process.py \
  --ignore=tests/test_rules.py \
  --ignore=tests/test_scrapers.py \
  --ignore=tests/test_sdk_contract.py
