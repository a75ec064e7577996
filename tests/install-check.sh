#!/bin/sh
# install-check.sh - `make install DESTDIR=...` from the build tree installs
# exactly the expected files in the directories chosen with ./configure,
# with every path placeholder substituted, and `make uninstall` removes them.
# The installed systemd unit passes `systemd-analyze verify` and the SysV
# init script `sh -n` and shellcheck (each skipped when the tool is missing).
#
# Run by `make check`, which sets TOP_BUILDDIR, MAKE and DBD_* (the
# configured directories; see AM_TESTS_ENVIRONMENT in Makefile.am). Ends with
# "install-check: N passed, N failed".
set -u

: "${TOP_BUILDDIR:?run through make check}"
: "${DBD_SBINDIR:?run through make check}"
MAKE=${MAKE:-make}

passed=0 failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
finish() {
	echo "install-check: $passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit $?
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dialbackd-install.XXXXXX") || exit 99
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
dest="$tmp/dest"

# A clean make: no jobserver or variables of the make running this test.
# $MAKE may carry options: split it.
# shellcheck disable=SC2086
submake() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
	    $MAKE -C "$TOP_BUILDDIR" "$@" >>"$tmp/make.log" 2>&1
}

# ---- 1. the installed files --------------------------------------------------
expected() {
	echo "$DBD_SBINDIR/dialbackd"
	echo "$DBD_BINDIR/dialbackd-dbtool"
	echo "$DBD_SYSCONFDIR/dialbackd/dialbackd.conf.example"
	echo "$DBD_MANDIR/man8/dialbackd.8"
	echo "$DBD_MANDIR/man5/dialbackd.conf.5"
	echo "$DBD_MANDIR/man1/dialbackd-dbtool.1"
	[ -z "${DBD_UNITDIR:-}" ] || echo "$DBD_UNITDIR/dialbackd.service"
	[ -z "${DBD_INITDIR:-}" ] || echo "$DBD_INITDIR/dialbackd"
}
expected | sed 's|//*|/|g' | sort >"$tmp/expected"

if ! submake install DESTDIR="$dest"; then
	cat "$tmp/make.log"
	fail "make install" "failed (output above)"
	finish
fi
(cd "$dest" && find . ! -type d | sed 's|^\.||' | sort) >"$tmp/installed"
if diff -u "$tmp/expected" "$tmp/installed" >"$tmp/diff"; then
	pass "make install DESTDIR installs the expected $(wc -l <"$tmp/expected") files"
else
	cat "$tmp/diff"
	fail "make install DESTDIR" "installed files differ from the expected list (diff above: - expected, + installed)"
fi

# ---- 2. placeholders substituted, paths from configure ----------------------
bad=""
while read -r f; do
	case "$f" in */sbin/*|*/bin/*) continue ;; esac
	if grep -n '@[a-zA-Z_]*dir@\|@PACKAGE_VERSION@' "$dest$f"; then
		bad="$bad $f"
	fi
done <"$tmp/installed"
conf="$DBD_SYSCONFDIR/dialbackd/dialbackd.conf"
grep -q -- "$conf" "$dest$DBD_MANDIR/man8/dialbackd.8" || bad="$bad dialbackd.8:no-$conf"
grep -q -- "$DBD_LOCALSTATEDIR/lib/dialbackd" "$dest$DBD_MANDIR/man5/dialbackd.conf.5" ||
	bad="$bad dialbackd.conf.5:no-localstatedir"
grep -q -- "^#pidfile = $DBD_RUNSTATEDIR/dialbackd.pid\$" \
    "$dest$DBD_SYSCONFDIR/dialbackd/dialbackd.conf.example" || bad="$bad conf.example:pidfile"
grep -q -- "^#store = $DBD_LOCALSTATEDIR/lib/dialbackd\$" \
    "$dest$DBD_SYSCONFDIR/dialbackd/dialbackd.conf.example" || bad="$bad conf.example:store"
if [ -n "${DBD_UNITDIR:-}" ]; then
	grep -q -- "^ExecStart=$DBD_SBINDIR/dialbackd -f -c $conf\$" "$dest$DBD_UNITDIR/dialbackd.service" ||
		bad="$bad dialbackd.service:ExecStart"
fi
if [ -z "$bad" ]; then
	pass "installed pages, unit and example name the configured directories"
else
	fail "path substitution" "wrong or missing in:$bad"
fi

# The installed example loads as it is.
if "$dest$DBD_SBINDIR/dialbackd" -t -c "$dest$DBD_SYSCONFDIR/dialbackd/dialbackd.conf.example" >"$tmp/t.out" 2>&1; then
	pass "installed dialbackd -t accepts the installed example configuration"
else
	cat "$tmp/t.out"
	fail "dialbackd -t" "rejects the installed example configuration"
fi

# ---- 3. systemd unit ----------------------------------------------------------
if [ -z "${DBD_UNITDIR:-}" ]; then
	echo "SKIP systemd-analyze verify: configured --without-systemdsystemunitdir"
elif ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP systemd-analyze verify: systemd-analyze is not installed (apt-get install systemd)"
else
	# Verify a copy whose commands point into DESTDIR, where the binary is.
	unit="$tmp/dialbackd.service"
	sed -e "s|$DBD_SBINDIR/dialbackd|$dest$DBD_SBINDIR/dialbackd|g" \
	    "$dest$DBD_UNITDIR/dialbackd.service" >"$unit"
	# Documentation= is checked with man(1) against the installed pages.
	man_opt=""
	command -v man >/dev/null 2>&1 || man_opt="--man=no"
	if MANPATH="$dest$DBD_MANDIR" SYSTEMD_LOG_LEVEL=notice \
	    systemd-analyze verify $man_opt "$unit" >"$tmp/verify" 2>&1 &&
	    ! grep -q . "$tmp/verify"; then
		pass "systemd-analyze verify dialbackd.service"
	else
		cat "$tmp/verify"
		fail "systemd-analyze verify" "dialbackd.service (messages above)"
	fi
fi

# ---- 4. SysV init script ----------------------------------------------------
# The installed one, else the one made in the build tree.
if [ -n "${DBD_INITDIR:-}" ]; then
	script="$dest$DBD_INITDIR/dialbackd"
else
	script="$TOP_BUILDDIR/etc/init.d/dialbackd"
fi
if [ -x "$script" ] && sh -n "$script" 2>"$tmp/shn"; then
	pass "sh -n init.d/dialbackd"
else
	cat "$tmp/shn"
	fail "init.d/dialbackd" "missing, not executable or sh -n fails"
fi
if ! command -v shellcheck >/dev/null 2>&1; then
	echo "SKIP shellcheck init.d/dialbackd: shellcheck is not installed (apt-get install shellcheck)"
elif shellcheck "$script" >"$tmp/sc" 2>&1; then
	pass "shellcheck init.d/dialbackd"
else
	cat "$tmp/sc"
	fail "shellcheck" "init.d/dialbackd (messages above)"
fi

# ---- 5. make uninstall ------------------------------------------------------
if submake uninstall DESTDIR="$dest"; then
	left=$(cd "$dest" && find . ! -type d)
	if [ -z "$left" ]; then
		pass "make uninstall DESTDIR removes every installed file"
	else
		fail "make uninstall" "left: $left"
	fi
else
	cat "$tmp/make.log"
	fail "make uninstall" "failed (output above)"
fi

finish
