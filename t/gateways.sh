# shellcheck shell=bash
# t/gateways.sh - tesserad gateways started by shell scripts: waiting
# until one listens, and a raft:// group of three on one volume.  Sourced
# by the kernel-client tests (t/kernel/common.sh) and bench/raft.sh.
#
# For the group, the caller sets
#   RG_BIN         the directory holding tessera and tesserad
#   RG_DIR         the gateways' configurations (RG_DIR/nI.conf), raft
#                  directories and the group's secret; RG_DIR/exports is
#                  the caller's to write
#   RG_LOGS        gateway I's log (RG_LOGS/nI.log), format's and raft add's
#   RAFT_ADDR[I]   gateway I's raft address:port, NFS_ADDR[I] its NFS one
# and may redefine rg_conf I, which prints gateway I's configuration
# lines besides the group's (by default: no metrics, no rpcbind).
# Gateway I runs as PID[I], an array the caller declares.

# listening ADDR:PORT | PORT: something listens there (TCP)
listening() {
	case $1 in
	*:*) ss -ltnH "src $1" 2>/dev/null | grep -q . ;;
	*) ss -ltnH "sport = :$1" 2>/dev/null | grep -q . ;;
	esac
}

# wait_listen ADDR:PORT PID WHAT LOG: until PID listens at ADDR:PORT;
# fails when PID ends or after 60 s (a stall detector, not a measure),
# and shows LOG's tail.
wait_listen() {
	for _ in $(seq 300); do
		listening "$1" && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.2
	done
	echo "# $3 did not start listening on $1:"
	tail -n 30 "$4" | sed 's/^/#   /'
	return 1
}

rg_conf() { printf 'metrics_listen = off\nrpcbind = no\n'; }

# rg_start I: gateway I started.  One that is not a member yet waits for
# `tessera raft add` before it serves NFS.
rg_start() {
	"$RG_BIN/tesserad" -c "$RG_DIR/n$1.conf" --meta raft:// -f \
		>>"$RG_LOGS/n$1.log" 2>&1 &
	PID[$1]=$!
}

# rg_wait I: until gateway I serves NFS.
rg_wait() {
	wait_listen "${NFS_ADDR[$1]}" "${PID[$1]}" "gateway $1" \
		"$RG_LOGS/n$1.log"
}

# rg_found STORAGE NAME: the group's secret and configurations, the
# volume NAME formatted through gateway 1 with its blocks in STORAGE, the
# three gateways started and 2 and 3 added to the group; returns once all
# three serve NFS.
rg_found() {
	local i peers=
	"$RG_BIN/tessera" raft secret "$RG_DIR/raft.key" >/dev/null || return 1
	for i in 1 2 3; do peers="${peers:+$peers,}$i@${RAFT_ADDR[$i]}"; done
	for i in 1 2 3; do
		{
			cat <<-EOF
			raft_id = $i
			raft_dir = $RG_DIR/n$i
			raft_address = ${RAFT_ADDR[$i]}
			raft_peers = $peers
			raft_secret_file = $RG_DIR/raft.key
			listen = ${NFS_ADDR[$i]}
			exports = $RG_DIR/exports
			EOF
			rg_conf "$i"
		} >"$RG_DIR/n$i.conf"
	done
	"$RG_BIN/tessera" -c "$RG_DIR/n1.conf" format raft:// "$1" "$2" \
		>"$RG_LOGS/format-raft.log" 2>&1 || {
		echo "# tessera format failed:"
		sed 's/^/#   /' "$RG_LOGS/format-raft.log"
		return 1
	}
	for i in 1 2 3; do rg_start "$i"; done
	rg_wait 1 || return 1
	for i in 2 3; do
		"$RG_BIN/tessera" -c "$RG_DIR/n1.conf" raft add "$i" \
			"${RAFT_ADDR[$i]}" >>"$RG_LOGS/add.log" 2>&1 || {
			echo "# raft add $i:"
			sed 's/^/#   /' "$RG_LOGS/add.log"
			return 1
		}
		rg_wait "$i" || return 1
	done
}
