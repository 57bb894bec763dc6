#!/usr/bin/env bash
# make setup: everything the local stack and the tests need, idempotent; a second run takes seconds.
# Installs missing Debian packages (root only), fetches the Apache Kafka jars with Maven, builds
# TimescaleDB (Apache-2 edition) from Debian's source package, creates .venv with the package.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
LOCAL=$ROOT/.local
PY=${PYTHON:-python3}
STEPS=6
step() { printf '\033[1m[setup %s/%s]\033[0m %s\n' "$1" "$STEPS" "$2"; }
fail() { printf '\033[31msetup failed:\033[0m %s\n' "$*" >&2; exit 1; }
mkdir -p "$LOCAL"

PG_BIN=/usr/lib/postgresql/15/bin
APT_PACKAGES=(postgresql-15 postgresql-server-dev-15 cmake gcc make dpkg-dev libssl-dev
              prometheus openjdk-17-jre-headless maven docker-compose nodejs git curl ca-certificates)

step 1 "system packages"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs may come from NodeSource rather than Debian; any node >= 18 will do.
if command -v node >/dev/null; then missing=("${missing[@]/nodejs}"); fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if ((${#missing[@]})); then
  if [[ $EUID -ne 0 ]]; then
    fail "missing Debian packages: ${missing[*]}. Install them as root: apt-get install -y --no-install-recommends ${missing[*]}"
  fi
  echo "  installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "  all present"
fi

step 2 "Apache Kafka jars (Maven Central)"
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' deploy/kafka/pom.xml)
if [[ -f $LOCAL/kafka/libs/kafka_2.13-$KAFKA_VERSION.jar ]]; then
  echo "  kafka $KAFKA_VERSION present"
else
  echo "  fetching kafka $KAFKA_VERSION with maven"
  rm -rf "$LOCAL/kafka/libs"
  mvn -q -B -f deploy/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory="$LOCAL/kafka/libs" \
    || fail "maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (is Maven Central reachable?)"
fi

step 3 "TimescaleDB extension (Apache-2 edition)"
PG_SHARE=$($PG_BIN/pg_config --sharedir)
if ls "$PG_SHARE"/extension/timescaledb--*.sql >/dev/null 2>&1; then
  echo "  installed: $(ls "$PG_SHARE"/extension/timescaledb--*.sql | sed 's:.*timescaledb--::;s:\.sql::' | grep -v -- '--' | sort -V | tail -1)"
else
  [[ $EUID -eq 0 ]] || fail "TimescaleDB is not installed for PostgreSQL 15; run make setup as root to build it"
  SRC_LIST=/etc/apt/sources.list.d/pantau-trixie-src.sources
  if [[ ! -f $SRC_LIST ]]; then
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$SRC_LIST"
    apt-get update -qq
  fi
  BUILD=$LOCAL/build/timescaledb
  rm -rf "$BUILD" && mkdir -p "$BUILD"
  echo "  fetching Debian's timescaledb source package"
  (cd "$BUILD" && apt-get source -qq timescaledb >/dev/null 2>&1) || fail "apt-get source timescaledb failed (needs the deb-src line in $SRC_LIST)"
  SRC_DIR=$(find "$BUILD" -maxdepth 1 -mindepth 1 -type d | head -1)
  echo "  building $(basename "$SRC_DIR")"
  (cd "$SRC_DIR" && ./bootstrap -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF \
      -DPG_CONFIG=$PG_BIN/pg_config >"$BUILD/bootstrap.log" 2>&1 \
    && make -C build -j"$(nproc)" install >"$BUILD/make.log" 2>&1) \
    || fail "TimescaleDB build failed; see $BUILD/bootstrap.log and $BUILD/make.log"
  echo "  installed"
fi

step 4 "Python virtualenv (.venv)"
STAMP=.venv/.installed
if [[ -f $STAMP && $STAMP -nt pyproject.toml && $STAMP -nt constraints.txt ]]; then
  echo "  up to date"
else
  [[ -x .venv/bin/python ]] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
  touch "$STAMP"
  echo "  installed pantau with dev extras"
fi

step 5 "AsyncAPI validator (npm)"
if [[ -d contracts/tools/node_modules/@asyncapi/parser && contracts/tools/node_modules -nt contracts/tools/package-lock.json ]]; then
  echo "  up to date"
else
  (cd contracts/tools && npm ci --silent --no-audit --no-fund) || fail "npm ci in contracts/tools failed"
  touch contracts/tools/node_modules
  echo "  installed @asyncapi/parser"
fi

step 6 "local state in .local/"
mkdir -p "$LOCAL/logs"
echo "  ready: make run (stack) or make test (suite)"
