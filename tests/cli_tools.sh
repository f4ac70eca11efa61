#!/usr/bin/env bash
# ctest wrapper: cli_tools.sh <alloy binary> <tests/data>
exec python3 "$(dirname "$0")/cli_tools.py" "$@"
