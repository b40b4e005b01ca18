#!/usr/bin/env bash
# zkCli.sh for ferrokeeper: takes zkCli.sh's arguments
#   zkCli.sh [-server host:port[,host:port...]] [-timeout ms] [cmd args]
# and runs `ferrokeeper cli` with them (`--output json` also works). The
# binary is $FERROKEEPER_BIN, else the release build next to this script,
# else `ferrokeeper` on PATH.
set -eu
BINDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BINDIR/find-ferrokeeper.sh"
exec "$FERROKEEPER" cli "$@"
