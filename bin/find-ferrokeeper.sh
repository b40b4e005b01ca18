# Sourced by bin/zkServer.sh and bin/zkCli.sh: sets FERROKEEPER to
# $FERROKEEPER_BIN, else the release build next to these scripts, else
# `ferrokeeper` on PATH.
FERROKEEPER=${FERROKEEPER_BIN:-}
if [ -z "$FERROKEEPER" ]; then
  for c in "$BINDIR/../target/release/ferrokeeper" "$BINDIR/ferrokeeper"; do
    if [ -x "$c" ]; then FERROKEEPER=$c; break; fi
  done
  FERROKEEPER=${FERROKEEPER:-ferrokeeper}
fi
