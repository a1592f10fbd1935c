#!/usr/bin/env bash
# Regenerates the initial migration from the models (before the first release only:
# once a schema is deployed, add a new revision with `alembic revision --autogenerate`).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -e "s#^sqlalchemy.url = .*#sqlalchemy.url = sqlite:///$tmp/gen.db#" \
    -e "s#^script_location = .*#script_location = $PWD/tracker/migrations#" alembic.ini > "$tmp/alembic.ini"
rm -f tracker/migrations/versions/0001_initial_schema.py
.venv/bin/alembic -c "$tmp/alembic.ini" revision --autogenerate -m "initial schema" --rev-id 0001
.venv/bin/ruff format -q tracker/migrations/versions/0001_initial_schema.py
