#!/usr/bin/env bash
# Fetches a reference ZooKeeper 3.9.5 for the tests that compare with it
# (tests/python/test_backup.py's 3.9 AdminServer). There is no ZooKeeper
# 3.9 package here: PyPI's pyspark 4.3.0 source distribution (about 456 MB)
# ships zookeeper-3.9.5.jar, zookeeper-jute-3.9.5.jar, Curator 5.9 and the
# Netty jars, which run QuorumPeerMain and ZooKeeperMain as they are (its
# AdminServer uses Debian's Jetty 9.4 jars). Only those jars are kept, in
# ${XDG_CACHE_HOME:-~/.cache}/ferrokeeper/zookeeper-3.9.5; the download is
# deleted. Prints that folder.
set -euo pipefail
dest="${XDG_CACHE_HOME:-$HOME/.cache}/ferrokeeper/zookeeper-3.9.5"
if [ -f "$dest/zookeeper-3.9.5.jar" ] && [ -f "$dest/.complete" ]; then
  echo "$dest"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
  pyspark==4.3.0 -d "$tmp" >&2
mkdir -p "$dest"
tar xzf "$tmp/pyspark-4.3.0.tar.gz" -C "$dest" --strip-components=3 --wildcards \
  'pyspark-4.3.0/deps/jars/zookeeper-*.jar' 'pyspark-4.3.0/deps/jars/netty-*-4.*.jar' \
  'pyspark-4.3.0/deps/jars/slf4j-api-*.jar' 'pyspark-4.3.0/deps/jars/audience-annotations-*.jar' \
  'pyspark-4.3.0/deps/jars/commons-io-*.jar' 'pyspark-4.3.0/deps/jars/snappy-java-*.jar' \
  'pyspark-4.3.0/deps/jars/metrics-core-*.jar' 'pyspark-4.3.0/deps/jars/jackson-core-*.jar' \
  'pyspark-4.3.0/deps/jars/jackson-databind-*.jar' 'pyspark-4.3.0/deps/jars/jackson-annotations-*.jar' \
  'pyspark-4.3.0/deps/jars/curator-*.jar' 'pyspark-4.3.0/deps/jars/jline-3*.jar'
touch "$dest/.complete"
echo "$dest"
