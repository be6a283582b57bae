#!/bin/sh
# symbols_test.sh - every global symbol a module defines carries the
# module's prefix (doc/DESIGN.md, "Conventions"): tl_ in lib/, os_ in
# objstore/, meta_ in meta/, cache_ in cache/, nfsd_ in nfsd/ and
# tesserad, tessera_ in tools/.  Anything else must be static.
#
# The symbols come from the built objects (nm on the static libraries
# and on the programs' own objects), so they are what the linker sees,
# whatever the sources look like.  Names that begin with "__" are the
# compiler's and the sanitizers' (ASan's __odr_asan_gen_*), never ours.
#
# Exceptions are listed below, each with why; an exception that no
# longer matches anything fails the test too, so the list only shrinks.
#
# Run by make check; by hand, from a build directory:
#   top_builddir=. sh ../t/unit/symbols_test.sh
# Exit 0 when all holds, 1 if not.
set -u
bld=${top_builddir:?set top_builddir}
fail=0
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; fail=1; }

# Exceptions, one a line: OBJECT-GLOB SYMBOL-GLOB (the object file's
# name, which automake may prefix with its target's, as in
# meta_libmeta_a-kv_raft.o, and the symbols it may define).  Why:
#   xdr_*  rpcgen names the XDR routines of nfsd/*_prot.x after the
#          protocol's types: generated code, compiled into libxdrgen.a.
exceptions='
*_prot_xdr.o xdr_*
'

# module: the objects (libraries or object files) and the prefix.
modules='
lib/libtl.a tl_
objstore/libobjstore.a os_
meta/libmeta.a meta_
cache/libcache.a cache_
nfsd/libnfsd.a nfsd_
nfsd/libxdrgen.a nfsd_
nfsd/main.o nfsd_
tools/*.o tessera_
'

# "object symbol" for every global symbol defined in the files given
# (nm's POSIX format: "lib.a[member.o]: name T ..." or "file.o: name T").
defined() {
	nm -P -A -g --defined-only "$@" | awk '{
		f = $1; sub(/:$/, "", f)
		if (f ~ /\[.*\]$/) { sub(/^.*\[/, "", f); sub(/\]$/, "", f) }
		sub(/.*\//, "", f)
		print f, $2
	}'
}

# Which exception (its first two fields) allows obj's sym, if any.
excepted() {
	echo "$exceptions" | while read -r og sg rest; do
		[ -n "$og" ] || continue
		case $1 in $og) ;; *) continue ;; esac
		case $2 in $sg) echo "$og $sg"; break ;; esac
	done
}

set -f # the globs above are patterns, expanded only where asked
used=
old_ifs=$IFS
IFS='
'
for m in $modules; do
	IFS=$old_ifs
	set -- $m
	pattern=$1 prefix=$2
	files=$(cd "$bld" && set +f && ls -d $pattern 2>/dev/null)
	if [ -z "$files" ]; then
		not_ok "$pattern: not built (build first)"
		continue
	fi
	bad=
	for line in $(cd "$bld" && defined $files | tr ' ' '|'); do
		obj=${line%%|*} sym=${line#*|}
		case $sym in
		main | __* | "$prefix"*) continue ;;
		esac
		e=$(excepted "$obj" "$sym")
		if [ -n "$e" ]; then
			used="$used$e
"
		else
			bad="$bad $obj:$sym"
		fi
	done
	if [ -z "$bad" ]; then
		ok "$pattern: every global symbol starts with $prefix"
	else
		echo "$bad" | tr ' ' '\n' | sed '/^$/d; s/^/#   /'
		not_ok "$pattern: global symbols without $prefix (make them static, or name them $prefix...)"
	fi
done
IFS=$old_ifs

# Every exception still allows something: the list only shrinks.
stale=$(echo "$exceptions" | while read -r og sg rest; do
	[ -n "$og" ] || continue
	echo "$used" | grep -qxF "$og $sg" || echo "$og $sg"
done)
if [ -z "$stale" ]; then
	ok "every exception is still needed"
else
	echo "$stale" | sed 's/^/#   /'
	not_ok "exceptions that match nothing any more: remove them"
fi

echo "1..$n"
exit $fail
