#!/bin/bash
# package-test.sh - the Debian package, built, checked, installed, run as
# its systemd unit would run it, used through NFS, and purged:
#   1. dpkg-buildpackage -us -uc -b (DEB_BUILD_OPTIONS=nocheck: the tests
#      ran in the build tree) in a copy of the source tree, so that the
#      tree itself is left as it was;
#   2. lintian on the result: an error fails the test;
#   3. apt-get install of the .deb: the user tessera, its directories,
#      the conffiles, and the example tessera.conf's commented settings
#      against the installed tesserad's defaults;
#   4. a volume formatted as the user tessera, and tesserad@pkgtest
#      started: with systemd as PID 1 by systemctl, otherwise (CI, this
#      machine) by running the unit's ExecStart, parsed from the installed
#      unit file, as its User= with its environment, umask, capabilities
#      and no_new_privs, under t/pkg/svcrun, which plays the service
#      manager's NOTIFY_SOCKET: READY=1 from the main process, only
#      CAP_NET_BIND_SERVICE (it listens on a port below 1024), a file
#      written and read back through libnfs with the shipped exports, its
#      log_file rotated by the shipped logrotate snippet and reopened by
#      the unit's ExecReload (RELOADING=1 then READY=1), SIGTERM
#      (STOPPING=1, exit 0), fsck clean;
#   5. apt-get purge: nothing of the package is left on the machine (the
#      user tessera stays, as Debian leaves system users).
# The package is purged whatever happens, so later stages never find
# /usr/sbin/tesserad in front of the build tree's.
# TAP lines; exit 0, 1, or 77 (skipped: not root, not Debian, tools
# missing).
set -u
S=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${top_builddir:-$S/build-plain}
SVCRUN=$B/t/pkg/svcrun
NAME=pkgtest
VOL=/var/lib/tessera/$NAME
CONF=/etc/tessera/$NAME.conf
UNIT=/lib/systemd/system/tesserad@.service
# The unit's TimeoutStartSec: how long a start may take before systemd
# gives up on it (a hang guard here, not a measure).
START_GUARD=300

n=0 failed=0
ok() {
	n=$((n + 1))
	echo "ok $n - $*"
}
not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $*"
}
# check "what" 'shell condition' (evaluated here, with this script's
# variables)
check() {
	if eval "$2"; then ok "$1"; else not_ok "$1"; fi
}
skip() {
	echo "# SKIP $*"
	exit 77
}

[ "$(id -u)" = 0 ] || skip "not root (installs a package)"
for t in dpkg-buildpackage lintian apt-get setpriv runuser nfs-cp nfs-ls \
	curl ss logrotate; do
	command -v "$t" >/dev/null || skip "$t missing"
done
[ -x "$SVCRUN" ] || skip "$SVCRUN not built (make check builds it)"
if dpkg-query -W -f='${Status}' tessera 2>/dev/null | grep -q installed; then
	echo "Bail out! a tessera package is installed already; purge it first"
	exit 1
fi

# /run, not /tmp: the user tessera must reach the notify socket (/tmp may
# be 0700).
W=$(mktemp -d /run/tessera-pkgtest.XXXXXX)
chmod 0711 "$W"
daemon= installed=0
cleanup() {
	if [ -n "$daemon" ] && kill -0 "$daemon" 2>/dev/null; then
		kill -TERM "$daemon"
		while kill -0 "$daemon" 2>/dev/null; do sleep 0.2; done
	fi
	[ -n "${svcrun:-}" ] && wait "$svcrun" 2>/dev/null
	rm -f "$CONF" "/etc/tessera/$NAME.env"
	rm -rf "$VOL"
	if [ "$installed" = 1 ]; then
		apt-get purge -y -qq tessera >"$W/purge-cleanup.log" 2>&1
	fi
	rm -rf "$W"
}
trap cleanup EXIT
bail() {
	echo "Bail out! $*"
	for f in "$W"/*.log "$W"/events; do
		[ -f "$f" ] && { echo "# --- $f"; tail -25 "$f" | sed 's/^/#   /'; }
	done
	exit 1
}

# ---- 1. build -------------------------------------------------------------
mkdir "$W/src"
tar -C "$S" --exclude=./.git --exclude='./build*' --exclude=./t/logs \
	--exclude=./t/kernel/work --exclude=./results --exclude=./debian/build \
	--exclude=./debian/tessera --exclude=./debian/.debhelper -cf - . |
	tar -C "$W/src" -xf - || bail "cannot copy the source tree"
if (cd "$W/src" && DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -us -uc -b) \
	>"$W/build.log" 2>&1; then
	ok "dpkg-buildpackage -us -uc -b"
else
	not_ok "dpkg-buildpackage -us -uc -b"
	bail "the package does not build"
fi
deb=$(ls "$W"/tessera_*.deb 2>/dev/null | head -1)
changes=$(ls "$W"/tessera_*.changes 2>/dev/null | head -1)
[ -f "$deb" ] || bail "no .deb built"
echo "# built $(basename "$deb")"

# ---- 2. lintian -----------------------------------------------------------
lintian --fail-on error "$changes" >"$W/lintian.log" 2>&1
lrc=$?
grep -E '^[EWI]: ' "$W/lintian.log" | sed 's/^/#   /'
check "lintian: no errors" '[ "$lrc" = 0 ]'

# ---- 3. install -----------------------------------------------------------
files_now() {
	find /etc /usr /lib /var/lib /var/cache /var/log /opt /srv -xdev \
		\( -path /var/lib/dpkg -o -path /var/lib/apt -o \
		-path /var/cache/apt -o -path /var/cache/debconf -o \
		-path /var/cache/man -o -path /var/cache/ldconfig -o \
		-path /var/log/apt -o -path /var/log/journal -o \
		-path /var/lib/systemd -o -path /var/lib/PackageKit \) \
		-prune -o \
		-print 2>/dev/null | grep -vE \
		'^/var/log/(dpkg\.log|alternatives\.log|lastlog|faillog)$|^/etc/(passwd|group|shadow|gshadow)-$' |
		sort
}
files_now >"$W/files.before"
installed=1
if apt-get install -y -qq --no-install-recommends "$deb" \
	>"$W/install.log" 2>&1; then
	ok "apt-get install $(basename "$deb")"
else
	not_ok "apt-get install $(basename "$deb")"
	bail "the package does not install"
fi
pw=$(getent passwd tessera)
uid=$(echo "$pw" | cut -d: -f3)
check "user tessera: a system user without a shell ($pw)" \
	'[ -n "$uid" ] && [ "$uid" -lt 1000 ] &&
	[ "$(echo "$pw" | cut -d: -f7)" = /usr/sbin/nologin ]'
for d in /var/lib/tessera /var/cache/tessera /var/log/tessera; do
	check "$d: tessera:tessera 0750" \
		'[ "$(stat -c %U:%G:%a "$d")" = tessera:tessera:750 ]'
done
cf=$(dpkg-query -W -f='${Conffiles}' tessera)
for f in /etc/tessera/tessera.conf /etc/tessera/exports \
	/etc/logrotate.d/tessera; do
	check "conffile $f" 'grep -q " $f " <<<"$cf"'
done
check "man pages installed" \
	'[ -f /usr/share/man/man8/tesserad.8.gz ] &&
	[ -f /usr/share/man/man5/tessera.conf.5.gz ] &&
	[ -f /usr/share/man/man1/tessera.1.gz ]'

# Every "#name = value" of the shipped tessera.conf is a real option shown
# with its default (an example where the default is empty).
/usr/sbin/tesserad --help >"$W/help.txt"
bad=
while read -r name value; do
	def=$(awk -v o="$name" '$1 == o { getline; sub(/.*\(default /, "");
		sub(/\)$/, ""); print; exit }' "$W/help.txt")
	if [ -z "$def" ]; then
		bad="$bad $name(unknown)"
	elif [ "$def" != '""' ] && [ "$def" != "$value" ]; then
		bad="$bad $name($value, default $def)"
	fi
done < <(sed -n 's/^#\([a-z_]*\) = \(.*\)$/\1 \2/p' /etc/tessera/tessera.conf)
check "tessera.conf shows real options and their defaults${bad:+:$bad}" \
	'[ -z "$bad" ]'

# ---- 4. a volume, served by the unit ----------------------------------------
if runuser -u tessera -- /usr/bin/tessera format "lmdb://$VOL/meta" \
	"file://$VOL/objects" "$NAME" >"$W/format.log" 2>&1; then
	ok "tessera format as the user tessera"
else
	not_ok "tessera format as the user tessera"
	bail "cannot format a volume"
fi
# Free ports: NFS below 1024 (only CAP_NET_BIND_SERVICE allows it), the
# metrics above.
free_port() {
	local p
	for p in $(seq "$1" "$2"); do
		if [ -z "$(ss -Htln "sport = :$p")" ]; then
			echo "$p"
			return
		fi
	done
}
port=$(free_port 700 1000)
mport=$(free_port 19049 19999)
[ -n "$port" ] && [ -n "$mport" ] || bail "no free ports"
# What README tells the operator: copy tessera.conf, set meta and the rest.
cp /etc/tessera/tessera.conf "$CONF"
cat >>"$CONF" <<EOF
meta = lmdb://$VOL/meta
listen = 127.0.0.1:$port
exports = /etc/tessera/exports
metrics_listen = 127.0.0.1:$mport
log_file = /var/log/tessera/$NAME.log
# rpcbind is shared by the whole machine: not this test's to change.
rpcbind = no
EOF

# The unit's [Service] settings (last assignment wins, as in systemd).
unit_get() {
	awk -v k="$1" '/^\[/ { sec = $0 } sec == "[Service]" &&
		index($0, k "=") == 1 { v = substr($0, length(k) + 2) }
		END { print v }' "$UNIT"
}
check "unit installed at $UNIT" '[ -f "$UNIT" ]'
for kv in Type=notify User=tessera Group=tessera \
	AmbientCapabilities=CAP_NET_BIND_SERVICE \
	CapabilityBoundingSet=CAP_NET_BIND_SERVICE NoNewPrivileges=yes \
	Restart=on-failure ProtectSystem=strict PrivateTmp=yes; do
	check "unit: $kv" '[ "$(unit_get "${kv%%=*}")" = "${kv#*=}" ]'
done

# systemd's specifiers that the unit uses; any other is the test's to
# learn before it can claim to run the unit.
expand() {
	local s=$1
	s=${s//%%/$'\001'}
	s=${s//%i/$NAME}
	s=${s//%I/$NAME}
	s=${s//%N/tesserad@$NAME}
	s=${s//%n/tesserad@$NAME.service}
	s=${s//%p/tesserad}
	s=${s//%P/tesserad}
	if [[ $s == *%* ]]; then
		bail "unit: specifier the test does not know in \"$1\""
	fi
	echo "${s//$'\001'/%}"
}
exec_start=$(expand "$(unit_get ExecStart)")
exec_start=${exec_start#[-@+!:]}
if [[ $exec_start == *[\"\'\$\\]* ]]; then
	bail "unit: ExecStart uses quotes or variables the test does not parse"
fi
read -ra argv <<<"$exec_start"
user=$(unit_get User)
group=$(unit_get Group)
umask_=$(unit_get UMask)
caps=$(unit_get AmbientCapabilities | tr 'A-Z' 'a-z' | sed 's/cap_//g;
	s/ \+/,+/g; s/^/+/')
envs=()
while read -r e; do
	[ -n "$e" ] && envs+=("$e")
done < <(awk '/^\[/ { sec = $0 } sec == "[Service]" &&
	/^Environment=/ { sub(/^Environment=/, ""); n = split($0, a, " ");
	for (i = 1; i <= n; i++) print a[i] }' "$UNIT")
envfile=$(expand "$(unit_get EnvironmentFile)")
envfile=${envfile#-}
if [ -f "$envfile" ]; then
	while read -r e; do
		[[ $e == [A-Za-z_]*=* ]] && envs+=("$e")
	done <"$envfile"
fi
echo "# ExecStart: ${argv[*]} (as $user:$group, umask $umask_, ambient $caps)"

if [ "$(ps -o comm= -p 1)" = systemd ]; then
	echo "# systemd is PID 1: systemctl start tesserad@$NAME"
	check "systemctl start tesserad@$NAME" \
		'systemctl start "tesserad@$NAME" >"$W/systemctl.log" 2>&1'
	daemon=$(systemctl show -P MainPID "tesserad@$NAME")
	managed=systemd
else
	echo "# systemd is not PID 1 ($(ps -o comm= -p 1)): the unit's" \
		"ExecStart under t/pkg/svcrun"
	(cd / && umask "${umask_:-0022}" &&
		exec "$SVCRUN" "$W/notify" "$W/events" -- \
			env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			NOTIFY_SOCKET="$W/notify" "${envs[@]}" \
			setpriv --reuid="$user" --regid="$group" --init-groups \
			--inh-caps=-all,"$caps" --ambient-caps=-all,"$caps" \
			--bounding-set=-all,"$caps" --no-new-privs \
			"${argv[@]}" 2>"$W/daemon.log") &
	svcrun=$!
	managed=svcrun
	# READY=1 from the main process, or the end of the daemon.
	waited=0
	while ! grep -qxE 'main READY=1|exit .*|signal .*' "$W/events" \
		2>/dev/null; do
		kill -0 "$svcrun" 2>/dev/null || break
		sleep 0.2
		waited=$((waited + 1))
		[ $waited -lt $((START_GUARD * 5)) ] ||
			bail "no READY=1 within TimeoutStartSec"
	done
	daemon=$(sed -n 's/^pid //p' "$W/events")
	check "READY=1 from the main process (pid $daemon)" \
		'grep -qx "main READY=1" "$W/events"'
	check "STATUS= says what it serves" \
		'grep -qx "main STATUS=serving volume \"$NAME\" on 127.0.0.1 port $port" "$W/events"'
fi
grep -qx 'main READY=1' "$W/events" 2>/dev/null || [ $managed = systemd ] ||
	bail "tesserad did not start"

st=/proc/$daemon/status
status_of() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$daemon/status"; }
check "runs as tessera" '[ "$(status_of Uid)" = "$uid" ]'
# CAP_NET_BIND_SERVICE is bit 10.
check "capabilities: CAP_NET_BIND_SERVICE only (effective, bounding)" \
	'[ "$(status_of CapEff)" = 0000000000000400 ] &&
	[ "$(status_of CapBnd)" = 0000000000000400 ]'
check "no_new_privs" '[ "$(status_of NoNewPrivs)" = 1 ]'
check "listens on 127.0.0.1:$port (below 1024)" \
	'[ -n "$(ss -Htln "sport = :$port")" ]'
LOG=/var/log/tessera/$NAME.log
check "log_file $LOG: the user tessera's, with the start in it" \
	'[ "$(stat -c %U "$LOG")" = tessera ] &&
	grep -q "volume \"$NAME\" on 127.0.0.1 port $port" "$LOG"'
check "healthz on the metrics port" \
	'[ "$(curl -s "http://127.0.0.1:$mport/healthz")" = ok ]'

# NFS through libnfs: root's client uses a privileged source port, as the
# shipped exports (secure) want; a user's is refused.
url() { echo "nfs://127.0.0.1/$1?version=3&nfsport=$port&mountport=$port"; }
head -c 300000 /dev/urandom >"$W/data"
check "nfs-cp a file in" \
	'nfs-cp "$W/data" "$(url /pkgtest.bin)" >"$W/nfs.log" 2>&1'
check "nfs-ls lists it" 'nfs-ls "$(url "")" 2>&1 | grep -q pkgtest.bin'
check "nfs-cp it back, same bytes" \
	'nfs-cp "$(url /pkgtest.bin)" "$W/back" >>"$W/nfs.log" 2>&1 &&
	cmp -s "$W/data" "$W/back"'
check "an unprivileged client is refused (exports: secure)" \
	'! setpriv --reuid=65534 --regid=65534 --clear-groups \
	nfs-ls "$(url "")" >/dev/null 2>&1'

# The shipped logrotate snippet moves the log away (as the user tessera:
# its directory is tessera's).  Under systemd its postrotate sends the
# units SIGHUP, and tesserad reopens the file at once; otherwise the
# reload below does.
check "logrotate -f /etc/logrotate.d/tessera" \
	'logrotate -f -s "$W/logrotate.state" /etc/logrotate.d/tessera \
	>"$W/logrotate.log" 2>&1 && [ -f "$LOG.1" ]'
if [ $managed = systemd ]; then
	while ! grep -q reloaded "$LOG" 2>/dev/null &&
		[ "$(systemctl is-active "tesserad@$NAME")" = active ]; do
		sleep 0.2
	done
	check "postrotate: SIGHUP to the unit, a new $LOG" \
		'grep -q reloaded "$LOG"'
else
	check "moved away until tesserad reopens it" '[ ! -e "$LOG" ]'
fi
if [ $managed = svcrun ]; then
	# ExecReload, as systemd runs it.
	reload=$(unit_get ExecReload)
	reload=${reload//\$MAINPID/$daemon}
	reload=${reload//\$\{MAINPID\}/$daemon}
	read -ra rargv <<<"${reload#[-@+!:]}"
	"${rargv[@]}"
	while [ "$(grep -cx 'main READY=1' "$W/events")" -lt 2 ] &&
		kill -0 "$svcrun" 2>/dev/null; do
		sleep 0.2
	done
	check "ExecReload ($reload): RELOADING=1, then READY=1" \
		'grep -qx "main RELOADING=1" "$W/events" &&
		[ "$(grep -cx "main READY=1" "$W/events")" = 2 ]'
	check "still serves after the reload" \
		'nfs-ls "$(url "")" 2>&1 | grep -q pkgtest.bin'
	check "and logs to a new $LOG" 'grep -q reloaded "$LOG"'
	# Stop as systemd does: KillSignal (SIGTERM) to the main process.
	kill -TERM "$daemon"
	wait "$svcrun"
	check "SIGTERM: STOPPING=1" 'grep -qx "main STOPPING=1" "$W/events"'
	check "and exit 0" 'grep -qx "exit 0" "$W/events"'
	check "nothing notified by another process" \
		'! grep -q "^other " "$W/events"'
else
	check "systemctl reload" 'systemctl reload "tesserad@$NAME"'
	check "and logs to a new $LOG" 'grep -q reloaded "$LOG"'
	check "systemctl stop" 'systemctl stop "tesserad@$NAME"'
fi
daemon=
check "tessera fsck: clean" \
	'runuser -u tessera -- /usr/bin/tessera fsck "lmdb://$VOL/meta" \
	>"$W/fsck.log" 2>&1'

# ---- 5. purge ---------------------------------------------------------------
rm -rf "$VOL" "$CONF"
installed=0
if apt-get purge -y -qq tessera >"$W/purge.log" 2>&1; then
	ok "apt-get purge tessera"
else
	not_ok "apt-get purge tessera"
	cat "$W/purge.log"
fi
check "package gone" \
	'! dpkg-query -W -f="\${Status}" tessera 2>/dev/null | grep -q installed'
check "no tesserad on PATH" '! command -v tesserad >/dev/null'
files_now >"$W/files.after"
diff "$W/files.before" "$W/files.after" >"$W/files.diff"
sed 's/^/#   /' "$W/files.diff"
check "the machine's files as before the install" '[ ! -s "$W/files.diff" ]'

echo "1..$n"
[ $failed = 0 ] || bail "$failed of $n checks failed"
exit 0
