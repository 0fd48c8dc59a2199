#!/usr/bin/env bash
# check_packages.sh - builds the CPack packages of a build directory and checks them as a
# packager and a downstream developer would:
#   1. cpack writes three .deb and three .tar.gz files (into a temp dir, not the build dir);
#   2. dpkg-deb -c / -f / -I: each package holds its files and only those, Depends was computed,
#      /etc/hdp/stub-host.json is a conffile, the host has its maintainer scripts, the unit and the
#      configurations name the installed paths;
#   3. dpkg-deb -x unpacks all three into a temporary root;
#   4. the unpacked plugin exports exactly hdp_plugin_entry_v1, and the unpacked hdp-stub-host
#      --check loads it with the example configuration, and starts with its own default one
#      (hdp-validate is not run on it: its host offers no extension, which the plugin refuses);
#   5. a C consumer compiles against the unpacked headers through pkg-config, and a host program
#      and a plugin module build with find_package(hdp_plugin_api CONFIG) from the temp root; the
#      module exports only its entry and passes hdp-validate and the unpacked host's --check.
#
# usage: check_packages.sh BUILD_DIR CPACK CMAKE CC NM LIBDIR CONSUMER_SOURCE_DIR GENERATOR
#   LIBDIR: the library directory under /usr (lib/<multiarch> on Debian)
set -euo pipefail

if [[ $# -ne 8 ]]; then
  echo "usage: $0 BUILD_DIR CPACK CMAKE CC NM LIBDIR CONSUMER_SOURCE_DIR GENERATOR" >&2
  exit 2
fi
build=$1 cpack=$2 cmake=$3 cc=$4 nm=$5 libdir=$6 consumer_src=$7 generator=$8

work=$(mktemp -d "${TMPDIR:-/tmp}/hdp-packaging.XXXXXX")
trap 'rm -rf "$work"' EXIT
out=$work/out
root=$work/root
mkdir -p "$out" "$root"

failures=0
step() { echo "== $*"; }
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
die() {
  echo "FAIL: $*" >&2
  exit 1
}

# ---- 1. build the packages ----------------------------------------------------------------------
step "cpack in $build"
if ! (cd "$build" && "$cpack" --config "$build/CPackConfig.cmake" -B "$out") >"$work/cpack.log" 2>&1; then
  cat "$work/cpack.log" >&2
  die "cpack failed"
fi

one_file() {  # one_file GLOB: the single file matching GLOB in $out
  local matches=()
  shopt -s nullglob
  matches=("$out"/$1)
  shopt -u nullglob
  [[ ${#matches[@]} -eq 1 ]] || die "expected one $1 in the cpack output, found ${#matches[@]}: $(ls "$out")"
  echo "${matches[0]}"
}
plugin_deb=$(one_file 'hdp-wavoip-recordings_*.deb')
dev_deb=$(one_file 'hdp-plugin-api-dev_*.deb')
host_deb=$(one_file 'hdp-stub-host_*.deb')
plugin_tgz=$(one_file 'hdp-wavoip-recordings_*.tar.gz')
dev_tgz=$(one_file 'hdp-plugin-api-dev_*.tar.gz')
host_tgz=$(one_file 'hdp-stub-host_*.tar.gz')
echo "built: $(cd "$out" && ls ./*.deb ./*.tar.gz | tr '\n' ' ')"

# ---- 2. contents and control fields -----------------------------------------------------------------
plugin_so=usr/$libdir/hdp/plugins/wavoip_recordings.so
plugin_files=("$plugin_so" usr/share/doc/hdp-wavoip-recordings/examples/wavoip-recordings.json)
dev_files=(usr/include/hdp/hdp.h usr/include/hdp/version.h usr/include/hdp/ext/metrics.h
           usr/include/hdp/ext/http.h usr/share/pkgconfig/hdp-plugin-api.pc
           usr/share/cmake/hdp_plugin_api/hdp_plugin_apiConfig.cmake
           usr/share/cmake/hdp_plugin_api/hdp_plugin_apiConfigVersion.cmake
           usr/share/cmake/hdp_plugin_api/hdp_plugin_apiTargets.cmake
           usr/share/hdp-plugin-api/exports.map usr/bin/hdp-validate)
host_files=(usr/bin/hdp-stub-host usr/lib/systemd/system/hdp-stub-host.service etc/hdp/stub-host.json
            usr/share/doc/hdp-stub-host/README.md)

# check_listing NAME LISTING_FILE EXPECTED... : every expected path is listed (as ./path or
# <top dir>/path), and regular files appear in no other package.
check_listing() {
  local name=$1 listing=$2
  shift 2
  for path in "$@"; do
    grep -Eq "(^|[ /.])${path//./\\.}\$" "$listing" || fail "$name lacks $path"
  done
}
for deb in "$plugin_deb" "$dev_deb" "$host_deb"; do
  dpkg-deb -c "$deb" | awk '{print $NF}' >"$deb.list"
  echo "-- $(basename "$deb"):"
  grep -v '/$' "$deb.list" | sed 's/^/   /'
done
check_listing hdp-wavoip-recordings.deb "$plugin_deb.list" "${plugin_files[@]}"
check_listing hdp-plugin-api-dev.deb "$dev_deb.list" "${dev_files[@]}"
check_listing hdp-stub-host.deb "$host_deb.list" "${host_files[@]}"
grep -q 'usr/include' "$plugin_deb.list" && fail "the plugin package carries headers"
grep -q 'usr/bin/' "$plugin_deb.list" && fail "the plugin package carries programs"
grep -q 'hdp/plugins/' "$host_deb.list" && fail "the host package carries a plugin"
grep -q 'usr/include' "$host_deb.list" && fail "the host package carries headers"
grep -q 'hdp-stub-host$' "$dev_deb.list" && fail "the dev package carries the host"

for tgz in "$plugin_tgz" "$dev_tgz" "$host_tgz"; do tar -tzf "$tgz" >"$tgz.list"; done
check_listing hdp-wavoip-recordings.tar.gz "$plugin_tgz.list" "${plugin_files[@]}"
check_listing hdp-plugin-api-dev.tar.gz "$dev_tgz.list" "${dev_files[@]}"
check_listing hdp-stub-host.tar.gz "$host_tgz.list" "${host_files[@]}"

[[ $(dpkg-deb -f "$plugin_deb" Package) == hdp-wavoip-recordings ]] || fail "plugin package name"
[[ $(dpkg-deb -f "$dev_deb" Package) == hdp-plugin-api-dev ]] || fail "dev package name"
[[ $(dpkg-deb -f "$host_deb" Package) == hdp-stub-host ]] || fail "host package name"
# dpkg-shlibdeps computed Depends from the binaries (the plugin downloads with libcurl).
plugin_depends=$(dpkg-deb -f "$plugin_deb" Depends)
host_depends=$(dpkg-deb -f "$host_deb" Depends)
echo "hdp-wavoip-recordings Depends: $plugin_depends"
echo "hdp-stub-host Depends: $host_depends"
[[ $plugin_depends == *libc6* && $plugin_depends == *libcurl4* && $plugin_depends == *libsqlite3-0* ]] \
  || fail "hdp-wavoip-recordings: Depends lacks libc6, libcurl4 or libsqlite3-0: $plugin_depends"
[[ $host_depends == *libc6* && $host_depends == *libsqlite3-0* && $host_depends == *libpq5* ]] \
  || fail "hdp-stub-host: Depends lacks libc6, libsqlite3-0 or libpq5 (--database): $host_depends"
[[ $(dpkg-deb -I "$host_deb" conffiles 2>/dev/null) == /etc/hdp/stub-host.json ]] \
  || fail "hdp-stub-host.deb: /etc/hdp/stub-host.json is not its one conffile"
for script in postinst prerm postrm; do
  dpkg-deb -I "$host_deb" "$script" 2>/dev/null | grep -q 'hdp-stub-host' || fail "hdp-stub-host.deb has no $script"
done

# ---- 3. unpack --------------------------------------------------------------------------------------
step "dpkg-deb -x into $root"
for deb in "$plugin_deb" "$dev_deb" "$host_deb"; do dpkg-deb -x "$deb" "$root"; done

unit=$root/usr/lib/systemd/system/hdp-stub-host.service
grep -q '^ExecStart=/usr/bin/hdp-stub-host --config /etc/hdp/stub-host.json' "$unit" || fail "unit ExecStart: $(grep ExecStart "$unit")"
grep -q '^StateDirectory=hdp-stub-host$' "$unit" || fail "unit has no StateDirectory"
grep -q '^WantedBy=multi-user.target$' "$unit" || fail "unit is not wanted by multi-user.target"
grep -q "\"/usr/$libdir/hdp/plugins/wavoip_recordings.so\"" \
  "$root/usr/share/doc/hdp-wavoip-recordings/examples/wavoip-recordings.json" \
  || fail "the example configuration does not name the installed plugin"
if command -v systemd-analyze >/dev/null 2>&1; then
  # Only the unit's syntax: the binary it names is under the temp root, not in /usr/bin.
  systemd-analyze verify "$unit" 2>&1 | grep -v 'is not executable\|No such file\|Command .* is not' | grep . \
    && fail "systemd-analyze verify complains about the unit"
fi

# ---- 4. the unpacked binaries -----------------------------------------------------------------------
step "exports of the unpacked plugin"
so=$root/$plugin_so
symbols=$("$nm" -D --defined-only "$so" | awk '{print $NF}')
[[ $symbols == hdp_plugin_entry_v1 ]] || fail "$plugin_so exports: $(echo "$symbols" | tr '\n' ' ')"

step "the unpacked host loads the unpacked plugin"
# The example configuration, with the plugin path moved into the temp root.
sed "s#\"/usr/$libdir/#\"$root/usr/$libdir/#" "$root/usr/share/doc/hdp-wavoip-recordings/examples/wavoip-recordings.json" >"$work/example.json"
if ! "$root/usr/bin/hdp-stub-host" --config "$work/example.json" --data-dir "$work/data-example" --check >"$work/check.log" 2>&1; then
  cat "$work/check.log" >&2
  fail "hdp-stub-host --check with the example configuration"
fi
grep -q 'loaded plugin' "$work/check.log" || fail "no plugin loaded with the example configuration"
if ! "$root/usr/bin/hdp-stub-host" --config "$root/etc/hdp/stub-host.json" --data-dir "$work/data-default" --check >"$work/check-default.log" 2>&1; then
  cat "$work/check-default.log" >&2
  fail "hdp-stub-host --check with /etc/hdp/stub-host.json"
fi

# ---- 5. consumers of the dev package ----------------------------------------------------------------
step "pkg-config"
export PKG_CONFIG_PATH=$root/usr/share/pkgconfig
export PKG_CONFIG_LIBDIR=$root/usr/share/pkgconfig  # nothing from the system
version=$(pkg-config --modversion hdp-plugin-api) || die "pkg-config does not find hdp-plugin-api"
cflags=$(pkg-config --cflags hdp-plugin-api)
abi=$(sed -n 's/^#define HDP_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' "$root/usr/include/hdp/version.h" | paste -sd.)
echo "hdp-plugin-api $version, cflags: $cflags"
[[ $version == "$abi" ]] || fail "pkg-config version $version, headers say $abi"
pkg-config --atleast-version=1.1 hdp-plugin-api || fail "pkg-config: not at least 1.1"
# shellcheck disable=SC2086 # cflags is a list of flags
"$cc" -std=c99 -Wall -Wextra -pedantic -Werror $cflags -MD -MF "$work/consumer.d" \
  "$consumer_src/host_consumer.c" -o "$work/host_consumer" || die "the consumer does not compile with pkg-config"
grep -q "$root/usr/share/pkgconfig/../../include/hdp/hdp.h\|$root/usr/include/hdp/hdp.h" "$work/consumer.d" \
  || fail "the consumer did not use the unpacked headers: $(grep -o '[^ ]*hdp/hdp.h' "$work/consumer.d")"
[[ $("$work/host_consumer") == "hdp ABI $abi hdp.metrics/1" ]] || fail "consumer printed: $("$work/host_consumer")"
unset PKG_CONFIG_PATH PKG_CONFIG_LIBDIR

step "find_package(hdp_plugin_api CONFIG)"
if ! "$cmake" -S "$consumer_src" -B "$work/consumer-build" -G "$generator" -DCMAKE_C_COMPILER="$cc" \
     -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$root/usr" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
     >"$work/consumer-configure.log" 2>&1; then
  cat "$work/consumer-configure.log" >&2
  die "find_package(hdp_plugin_api CONFIG) from the unpacked package failed"
fi
grep -q "hdp_plugin_api_DIR=$root/usr/share/cmake/hdp_plugin_api" "$work/consumer-configure.log" \
  || fail "find_package found another hdp_plugin_api: $(grep hdp_plugin_api_DIR "$work/consumer-configure.log")"
grep -q "hdp_plugin_api_VERSION=$abi" "$work/consumer-configure.log" || fail "the CMake package version is not $abi"
if ! "$cmake" --build "$work/consumer-build" >"$work/consumer-build.log" 2>&1; then
  cat "$work/consumer-build.log" >&2
  die "the find_package consumer does not build"
fi
[[ $("$work/consumer-build/host_consumer") == "hdp ABI $abi hdp.metrics/1" ]] || fail "find_package consumer output"
tiny=$work/consumer-build/tiny_plugin.so
symbols=$("$nm" -D --defined-only "$tiny" | awk '{print $NF}')
[[ $symbols == hdp_plugin_entry_v1 ]] || fail "hdp_plugin_api_make_module left exported: $(echo "$symbols" | tr '\n' ' ')"
"$root/usr/bin/hdp-validate" "$tiny" >"$work/validate-tiny.log" 2>&1 || { cat "$work/validate-tiny.log"; fail "hdp-validate refuses the consumer plugin"; }
"$root/usr/bin/hdp-stub-host" --plugin "$tiny" --data-dir "$work/data-tiny" --check >"$work/check-tiny.log" 2>&1 \
  || { cat "$work/check-tiny.log"; fail "the unpacked host refuses the consumer plugin"; }
# A version of another major does not satisfy the package.
mkdir -p "$work/major2"
printf 'cmake_minimum_required(VERSION 3.20)\nproject(m LANGUAGES NONE)\nfind_package(hdp_plugin_api 2 CONFIG QUIET)\nif(hdp_plugin_api_FOUND)\n  message(FATAL_ERROR "2.x accepted")\nendif()\n' >"$work/major2/CMakeLists.txt"
"$cmake" -S "$work/major2" -B "$work/major2/build" -DCMAKE_PREFIX_PATH="$root/usr" >"$work/major2.log" 2>&1 \
  || { cat "$work/major2.log"; fail "find_package(hdp_plugin_api 2) matched the 1.x package"; }

if [[ $failures -ne 0 ]]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "packages OK"
