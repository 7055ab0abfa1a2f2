#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The guest side of the modswap experiment (cargo xtask demo, the e2e part
# of cargo xtask test, cargo xtask bench e2e): the paper's section 4 on
# Linux 6.12. Started by /init; parameters come from the kernel command
# line (e2e.mode, e2e.rounds, e2e.clients, e2e.before, e2e.after).
#
# Disks: /dev/vda FAT32 (vfat: the web site and writers), /dev/vdb FAT16
# (msdos: a writer), /dev/vdc BFS (a writer). Modules: /modules/nls,
# /modules/v1 and /modules/v2 (fat, vfat, msdos, bfs).
#
# Every result is a line starting with E2E-; the host checks them:
#   E2E-SWAP <module> <version> ok us=<finit_module> attempts=<n> <sysfs>
#   E2E-SWAP-BUSY <module> <version> attempt=<n> busy=<task and function>
#   E2E-BEHAVIOUR <module> <version> ok|FAIL <what was seen>
#   E2E-PHASE <name> <CLOCK_MONOTONIC seconds>
#   E2E-RPS, E2E-WEB, E2E-WRITE (webload), E2E-BENCH (bench mode)
#   E2E-FAIL <why>, and at the end E2E-RESULT PASS|FAIL
set -u
PATH=/bin:/sbin
M=/modules
FAILED=0

param() {
	sed -n "s/.*e2e\.$1=\([^ ]*\).*/\1/p" /proc/cmdline
}
MODE=$(param mode)
ROUNDS=$(param rounds)
CLIENTS=$(param clients)
BEFORE=$(param before)
AFTER=$(param after)
: "${MODE:=demo}" "${ROUNDS:=20}" "${CLIENTS:=50}" "${BEFORE:=10}" "${AFTER:=10}"

say() { echo "E2E-$*"; }
fail() {
	echo "E2E-FAIL $*"
	FAILED=1
}
now() { webload now; }

load() {
	r=$(webload load "$1")
	case "$r" in
	ok*) ;;
	*) fail "load $1: $r" ;;
	esac
}

hotswap_stats() {
	for f in total_ns quiescence_ns tries resolution_ns relocation_ns \
		 relink_ns users replace_ns stopped_ns swaps kept_bytes \
		 load_resolution_ns; do
		printf '%s=%s ' $f "$(cat /sys/module/$1/hotswap/$f)"
	done
}

# swap MODULE VERSION: finit_module() of the other version with
# MODULE_INIT_HOTSWAP. The loader retries a
# busy module itself (module.hotswap_tries); an -EBUSY that still comes
# back is reported with the busy task and function, and retried here.
swap() {
	attempt=0
	while :; do
		attempt=$((attempt + 1))
		r=$(webload swap "$M/$2/$1.ko")
		case "$r" in
		ok*)
			say "SWAP $1 $2 ok us=${r#ok } attempts=$attempt $(hotswap_stats $1)"
			return 0
			;;
		"error 16 EBUSY"*)
			say "SWAP-BUSY $1 $2 attempt=$attempt busy=$(cat /sys/module/$1/hotswap/busy | tr ' ' '_')"
			if [ $attempt -ge 5 ]; then
				fail "swap $1 to $2: still busy after $attempt attempts"
				return 1
			fi
			;;
		*)
			why=$(dmesg | grep "hotswap: $1:" | tail -n 1)
			fail "swap $1 to $2 refused: $r: $why"
			return 1
			;;
		esac
	done
}

# behaviour MODULE VERSION: what the guest sees of the version's change.
behaviour() {
	case $1 in
	fat)
		# statfs f_namelen: bytes of the worst charset (v1) or characters (v2)
		got="$(webload namelen /mnt/vfat)/$(webload namelen /mnt/msdos)"
		want=1530/72
		[ "$2" = v2 ] && want=255/12
		;;
	vfat)
		got=$(webload create '/mnt/vfat/probe?name')
		want=EINVAL
		[ "$2" = v2 ] && want=EILSEQ
		;;
	msdos)
		got=$(webload create '/mnt/msdos/PROBE?.X')
		want=EINVAL
		[ "$2" = v2 ] && want=EILSEQ
		;;
	bfs)
		got=$(webload mkdir /mnt/bfs/probe)
		want=EPERM
		[ "$2" = v2 ] && want=EOPNOTSUPP
		;;
	esac
	case $1 in
	fat | bfs)
		# Drop cached inodes: the caches then allocate new slabs, which
		# calls their constructor, now the running version's.
		echo 2 >/proc/sys/vm/drop_caches
		ctor=/sys/kernel/slab/$1_inode_cache/ctor
		if [ ! -r $ctor ]; then
			fail "$1 $2: cannot read $ctor"
		elif ! grep -q "^init_once+0x0/.* \[$1\]" $ctor; then
			fail "$1 $2: the inode cache's constructor is $(cat $ctor)"
		fi
		;;
	esac
	if [ "$got" = "$want" ]; then
		say "BEHAVIOUR $1 $2 ok $got"
	else
		say "BEHAVIOUR $1 $2 FAIL got $got, want $want"
		fail "$1 $2: behaviour: got $got, want $want"
	fi
}

mounts() {
	grep -E ' /mnt/(vfat|msdos|bfs) ' /proc/self/mountinfo | cut -d' ' -f1,5,9
}

# The timing benchmark of idle loads and swaps (before the load starts).
bench_idle() {
	n=$1
	webload unload bfs >/dev/null
	webload unload msdos >/dev/null
	webload unload vfat >/dev/null
	webload unload fat >/dev/null
	say "BENCH load fat $(webload bench-load $M/v1/fat.ko fat $n)"
	load $M/v1/fat.ko
	say "BENCH load vfat $(webload bench-load $M/v1/vfat.ko vfat $n)"
	load $M/v1/vfat.ko
	[ "$MODE" = bench-stock ] && return
	say "BENCH resolve vfat $(cat /sys/module/vfat/hotswap/load_resolution_ns)"
	say "BENCH resolve fat $(cat /sys/module/fat/hotswap/load_resolution_ns)"
	i=0
	while [ $i -lt $n ]; do
		for v in v2 v1; do
			for m in vfat fat; do
				r=$(webload swap $M/$v/$m.ko)
				case "$r" in
				ok*) say "BENCH swap $m us=${r#ok } $(hotswap_stats $m)" ;;
				*) fail "idle swap $m $v: $r" ;;
				esac
			done
		done
		i=$((i + 1))
	done
	load $M/v1/msdos.ko
	load $M/v1/bfs.ko
	for m in fat vfat msdos bfs; do
		say "BENCH kept $m $(cat /sys/module/$m/hotswap/kept_bytes)"
	done
}

ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
mkdir -p /mnt/vfat /mnt/msdos /mnt/bfs
load $M/nls/nls_cp437.ko
load $M/nls/nls_iso8859-1.ko
for m in fat vfat msdos bfs; do
	load $M/v1/$m.ko
done
case "$MODE" in
bench*)
	bench_idle 20
	if [ "$MODE" = bench-stock ]; then
		say "RESULT $([ $FAILED = 0 ] && echo PASS || echo FAIL)"
		exit 0
	fi
	;;
esac
grep -E '^(fat|vfat|msdos|bfs) ' /proc/modules | sed 's/^/E2E-MODULE /'

mount -t vfat /dev/vda /mnt/vfat || fail "mount vfat"
mount -t msdos /dev/vdb /mnt/msdos || fail "mount msdos"
mount -t bfs /dev/vdc /mnt/bfs || fail "mount bfs"
MOUNTS_BEFORE=$(mounts)
mkdir -p /mnt/vfat/www /mnt/vfat/w
webload mkset /mnt/vfat/www || fail "mkset"
sync
for m in fat vfat msdos bfs; do
	behaviour $m v1
done
webload serve 80 /mnt/vfat/www &
HTTPD=$!

rm -f /tmp/e2e.stop
LIMIT=$((BEFORE + AFTER + 60 * ROUNDS + 120))
webload web 80 $LIMIT "$CLIENTS" >/tmp/web.out 2>&1 &
WEB=$!
webload write /mnt/vfat/w $LIMIT 3 long >/tmp/w-vfat.out 2>&1 &
W1=$!
webload write /mnt/msdos $LIMIT 1 dos >/tmp/w-msdos.out 2>&1 &
W2=$!
webload write /mnt/bfs $LIMIT 1 bfs >/tmp/w-bfs.out 2>&1 &
W3=$!

say "PHASE before $(now)"
sleep "$BEFORE"
say "PHASE swapping $(now)"
i=1
while [ $i -le "$ROUNDS" ]; do
	order="fat vfat msdos bfs"
	[ $((i % 2)) = 0 ] && order="bfs msdos vfat fat"
	for v in v2 v1; do
		for m in $order; do
			swap $m $v && behaviour $m $v
		done
	done
	say "ROUND $i $(now)"
	i=$((i + 1))
done
say "PHASE after $(now)"
sleep "$AFTER"
say "PHASE end $(now)"
touch /tmp/e2e.stop
wait $WEB || fail "web load"
wait $W1 || fail "vfat writers"
wait $W2 || fail "msdos writer"
wait $W3 || fail "bfs writer"
cat /tmp/web.out /tmp/w-vfat.out /tmp/w-msdos.out /tmp/w-bfs.out

MOUNTS_AFTER=$(mounts)
if [ "$MOUNTS_BEFORE" = "$MOUNTS_AFTER" ]; then
	say "MOUNTS kept: $(echo $MOUNTS_AFTER)"
else
	fail "mounts changed: before '$MOUNTS_BEFORE' after '$MOUNTS_AFTER'"
fi
grep -E '^(fat|vfat|msdos|bfs) ' /proc/modules | sed 's/^/E2E-MODULE /'

# The last version (v1) unmounts, and unloads after all those swaps.
kill $HTTPD
killall httpd 2>/dev/null
sleep 1
sync
for d in vfat msdos bfs; do
	umount /mnt/$d || fail "umount /mnt/$d"
done
for m in bfs msdos vfat fat; do
	r=$(webload unload $m)
	[ "$r" = ok ] || fail "rmmod $m: $r"
done
say "RESULT $([ $FAILED = 0 ] && echo PASS || echo FAIL)"
