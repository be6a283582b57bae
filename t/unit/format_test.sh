#!/bin/sh
# format_test.sh - every C source and header is as .clang-format says
# (doc/DESIGN.md, "Conventions"): clang-format-14 --dry-run --Werror on
# each file, one TAP line per file that is off, then one for all.
#
# Only clang-format 14 (Debian 12's) decides: other versions format some
# constructs differently, so without it the test is skipped (77), and
# scripts/install-deps.sh --test installs it for CI.  To format after a
# change:  clang-format-14 -i FILE...
#
# The files are git's (git ls-files) in a checkout, else every .c and .h
# below the source directory (a release tarball: no generated sources
# there, they are made in the build directory).
set -u
src=${top_srcdir:?set top_srcdir}
cf=$(command -v clang-format-14) || {
	echo "1..0 # SKIP clang-format-14 not installed"
	exit 77
}
cd "$src" || exit 1
if [ -e .git ] && command -v git >/dev/null; then
	files=$(git ls-files '*.c' '*.h')
else
	files=$(find . -name '*.c' -o -name '*.h' | sed 's|^\./||' | sort)
fi
n=0 bad=0
for f in $files; do
	[ -f "$f" ] || continue
	n=$((n + 1))
	if ! "$cf" --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then
		bad=$((bad + 1))
		echo "not ok $bad - $f is not formatted (clang-format-14 -i $f)"
	fi
done
if [ "$bad" = 0 ]; then
	echo "ok 1 - $n files formatted as .clang-format says"
	echo "1..1"
	exit 0
fi
echo "1..$bad"
exit 1
