#!/bin/sh
# cache_layers_test.sh - cache/ has a top and a bottom: every call
# between its files goes down the layers drawn at the top of
# cache/cache.c, and the drawing shows exactly those calls.
#
# The calls come from the built objects (nm on cache/libcache.a: which
# file defines each global symbol, which file uses it), so they are the
# calls the linker sees, whatever the sources look like.  Also checked:
# cache/cache.h carries the same drawing; every cache/*.c is in it; a
# file includes only its own -internal.h and those of files below it;
# no file outside cache/ includes a cache/*-internal.h.
#
# Run by make check; by hand, from a build directory:
#   top_srcdir=.. top_builddir=. sh ../t/unit/cache_layers_test.sh
# It prints the call graph it found.  Exit 0 when all holds, 1 if not.
set -u
src=${top_srcdir:?set top_srcdir}
lib=${top_builddir:?set top_builddir}/cache/libcache.a
fail=0
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; fail=1; }

# The drawing: " *   file.c  -> targets" lines, top layer first.
drawing() {
	sed -n 's/^ \*   \([a-z_]*\.c\) *-> *\(.*\)$/\1 \2/p' "$1"
}
layers=$(drawing "$src/cache/cache.c")
[ -n "$layers" ] || { echo "not ok 1 - no drawing in cache/cache.c"; exit 1; }
if [ "$layers" = "$(drawing "$src/cache/cache.h")" ]; then
	ok "cache/cache.h carries the drawing of cache/cache.c"
else
	not_ok "cache/cache.h carries the drawing of cache/cache.c"
fi

missing=
for f in "$src"/cache/*.c; do
	b=${f##*/}
	echo "$layers" | grep -q "^$b " || missing="$missing $b"
done
if [ -z "$missing" ]; then
	ok "every cache/*.c is in the drawing"
else
	not_ok "not in the drawing:$missing"
fi

[ -f "$lib" ] || { echo "not ok $((n + 1)) - no $lib (build first)"; exit 1; }
# "user.c owner.c" for every global symbol user.c takes from owner.c.
calls=$(nm -A -g "$lib" | awk '
	{
		split($1, p, ":"); f = p[2]; sub(/\.o$/, ".c", f)
		if ($2 == "U") use[f, $3] = 1; else if ($2 ~ /^[A-Z]$/) def[$3] = f
	}
	END {
		for (k in use) {
			split(k, q, SUBSEP)
			if ((q[2] in def) && def[q[2]] != q[1])
				print q[1], def[q[2]]
		}
	}' | sort -u)
echo "# calls between cache/ files (caller callee):"
echo "$calls" | sed 's/^/#   /'

# Check the calls against the drawing, and the drawing against the calls.
bad=$(printf '%s\n--\n%s\n' "$layers" "$calls" | awk '
	/^--$/ { calls = 1; next }
	!calls {
		rank[$1] = NR; any[$1] = ($2 == "*")
		for (i = 2; i <= NF; i++)
			if ($i ~ /\.c$/) drawn[$1, $i] = 1
		next
	}
	{
		seen[$1, $2] = 1
		if (!($1 in rank) || !($2 in rank))
			print "call " $1 " -> " $2 ": not in the drawing"
		else if (rank[$2] <= rank[$1])
			print "call up: " $1 " -> " $2
		else if (!any[$1] && !(($1, $2) in drawn))
			print "call " $1 " -> " $2 ": no arrow in the drawing"
	}
	END {
		for (k in drawn) {
			split(k, q, SUBSEP)
			if (!(k in seen))
				print "arrow " q[1] " -> " q[2] ": no such call"
			if (rank[q[2]] <= rank[q[1]])
				print "arrow up: " q[1] " -> " q[2]
		}
	}')
if [ -z "$bad" ]; then
	ok "every call goes down, along an arrow of the drawing"
	ok "every arrow of the drawing is a call"
else
	echo "$bad" | sed 's/^/# /'
	not_ok "the calls and the drawing disagree"
fi

# Includes: the header of a file (x-internal.h belongs to x.c) may be
# included by that file, by files above it, and by headers of files
# above it.
owner() { # file -> the .c it belongs to
	b=${1##*/}
	case $b in
	*-internal.h) echo "${b%-internal.h}.c" ;;
	*) echo "$b" ;;
	esac
}
rank_of() {
	echo "$layers" | awk -v f="$1" '$1 == f { print NR; exit }'
}
badinc=
for f in "$src"/cache/*.c "$src"/cache/*-internal.h; do
	me=$(owner "$f")
	r=$(rank_of "$me")
	for h in $(sed -n 's/^#include "cache\/\([a-z_]*-internal\.h\)".*/\1/p' "$f"); do
		him=$(owner "$h")
		[ "$him" = "$me" ] && continue
		hr=$(rank_of "$him")
		if [ -z "$r" ] || [ -z "$hr" ] || [ "$hr" -le "$r" ]; then
			badinc="$badinc ${f##*/}:$h"
		fi
	done
done
if [ -z "$badinc" ]; then
	ok "every cache/ file includes only headers of files below it"
else
	not_ok "includes going up or sideways:$badinc"
fi

outside=
for d in lib objstore meta nfsd tools t bench; do
	[ -d "$src/$d" ] || continue
	outside="$outside$(grep -rl --include='*.c' --include='*.h' \
		'#include "cache/[a-z_]*-internal\.h"' "$src/$d")"
done
if [ -z "$outside" ]; then
	ok "no file outside cache/ includes a cache/*-internal.h"
else
	not_ok "cache/*-internal.h included from outside: $outside"
fi

echo "1..$n"
exit $fail
