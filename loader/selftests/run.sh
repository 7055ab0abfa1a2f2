#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The loader selftests and benchmark, run inside the QEMU guest by /init
# (see xtask/src/loadertest.rs). Usage: run.sh test|bench|off
#
# Modules are in /modules/<build>/<module>.ko, the helper is /bin/msw.
# Every test prints "MSW-TEST <name> PASS" or "MSW-TEST <name> FAIL: why";
# the host fails the run on any FAIL, on a missing PASS, and on any kernel
# Oops, BUG, WARNING or lockdep report in the log.

M=/modules
DEV=/dev/msw
FAILED=0
CURRENT=

pass() { echo "MSW-TEST $CURRENT PASS"; }
fail() { echo "MSW-TEST $CURRENT FAIL: $*"; FAILED=1; }
start() { CURRENT=$1; echo "MSW-START $1"; dmesg -c >/dev/null; }

# ko FILE [PARAMS]: finit_module(), with MODULE_INIT_HOTSWAP when a module
# of that name is loaded (a swap is explicit); prints the helper's result
# ("ok" or "error N ...")
ko() {
	if grep -q "^$(basename "$1" .ko) " /proc/modules; then
		msw swap "$@"
	else
		msw load "$@"
	fi
}

# load BUILD [PARAMS]: msw_dev or msw_user of that build
load() {
	mod=msw_dev
	case $1 in msw_user*) mod=msw_user ;; esac
	ko "$M/$1/$mod.ko" "$2"
}

expect() {	# expect WANT GOT WHAT
	[ "$1" = "$2" ] || { fail "$3: expected '$1', got '$2'"; return 1; }
}

field() {	# field NAME LINE
	echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

version() { msw read $DEV | cut -d' ' -f1; }
count() { field count "$(msw read $DEV)"; }
param() { cat /sys/module/msw_user/parameters/$1; }
hs() { cat /sys/module/$1/hotswap/$2; }

mkdev() {
	major=$(sed -n 's/^ *\([0-9]*\) msw_dev$/\1/p' /proc/devices)
	rm -f $DEV
	mknod $DEV c "$major" 0
}

dmesg_has() {
	dmesg | grep -q "$1" || { fail "no '$1' in the kernel log"; return 1; }
}

# refuse BUILD ERRNO MESSAGE: a swap that must fail and leave the loaded
# version working, its counter going on.
refuse() {
	before=$(msw read $DEV)
	v=$(echo "$before" | cut -d' ' -f1)
	c=$(field count "$before")
	r=$(load "$1")
	expect "error $2" "$(echo "$r" | cut -d' ' -f1-2)" "load $1" || return 1
	dmesg_has "$3" || return 1
	after=$(msw read $DEV)
	expect "$v" "$(echo "$after" | cut -d' ' -f1)" "version after $1" || return 1
	expect $((c + 1)) "$(field count "$after")" "count after $1" || return 1
	expect "$(field banner "$before")" "$(field banner "$after")" "banner after $1"
}

# start_sleeper: a reader that blocks inside msw_dev's read() (its pid in
# $sleeper, what it reads in /tmp/sleeper) until "wake" is written.
start_sleeper() {
	msw sleep $DEV > /tmp/sleeper &
	sleeper=$!
	i=0
	while [ "$(field sleepers "$(msw read $DEV)")" != 1 ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || { fail "sleeper did not block"; return 1; }
		sleep 0.1
	done
}

test_fresh_load() {
	start fresh_load
	expect ok "$(load v1)" "load v1" || return
	mkdev
	expect "v1 count=1 sleepers=0 opens=1 banner=hello-from-v1" \
		"$(msw read $DEV)" "first read" || return
	expect 1 "$(hs msw_dev hotswappable)" "hotswappable" || return
	expect 0 "$(hs msw_dev swaps)" "swaps" || return
	dmesg_has "msw_dev: hotswappable: keeping" || return
	pass
}

test_eexist() {
	start eexist
	# Without MODULE_INIT_HOTSWAP a second load is a duplicate, as ever.
	expect "error 17" "$(msw load $M/v2/msw_dev.ko | cut -d' ' -f1-2)" \
		"plain load of a hotswappable image" || return
	insmod $M/v2/msw_dev.ko 2>/tmp/err
	grep -q "File exists" /tmp/err || { fail "busybox insmod: $(cat /tmp/err)"; return; }
	expect "error 17" "$(msw load $M/v2_nohotswap/msw_dev.ko | cut -d' ' -f1-2)" \
		"non-hotswappable image" || return
	expect "error 8" "$(msw swap $M/v2_nohotswap/msw_dev.ko | cut -d' ' -f1-2)" \
		"swap to a non-hotswappable image" || return
	dmesg_has "msw_dev: MODULE_INIT_HOTSWAP, but the image is not hotswappable" || return
	expect "error 2" "$(msw swap $M/msw_user_v1_hs/msw_user.ko | cut -d' ' -f1-2)" \
		"swap of a module that is not loaded" || return
	dmesg_has "msw_user: MODULE_INIT_HOTSWAP, but no version is loaded" || return
	expect "error 22" "$(load v2 "debug=1" | cut -d' ' -f1-2)" \
		"swap with parameters" || return
	dmesg_has "a hotswap takes no module parameters" || return
	expect v1 "$(version)" "still v1" || return
	pass
}

test_idle_swap() {
	start idle_swap
	proc_before=$(grep '^msw_dev ' /proc/modules)
	text_before=$(cat /sys/module/msw_dev/sections/.text)
	case "$(cat /sys/module/msw_dev/taint)" in
	*K*) fail "tainted K before any swap"; return ;;
	esac
	[ $(($(cat /proc/sys/kernel/tainted) & 32768)) = 0 ] ||
		{ fail "kernel tainted K before any swap"; return; }
	before=$(msw read $DEV)
	expect ok "$(load v2)" "swap to v2" || return
	case "$(cat /sys/module/msw_dev/taint)" in
	*K*) ;;
	*) fail "not tainted K (live patched) after a swap: $(cat /sys/module/msw_dev/taint)"; return ;;
	esac
	[ $(($(cat /proc/sys/kernel/tainted) & 32768)) != 0 ] ||
		{ fail "kernel not tainted K: $(cat /proc/sys/kernel/tainted)"; return; }
	line=$(msw read $DEV)
	expect v2 "$(echo "$line" | cut -d' ' -f1)" "version" || return
	expect $(($(field count "$before") + 1)) "$(field count "$line")" \
		"count carried over" || return
	expect hello-from-v2 "$(field banner "$line")" "banner" || return
	expect $(($(field opens "$before") + 1)) "$(field opens "$line")" \
		"opens handed over by _old_" || return
	expect 1 "$(hs msw_dev swaps)" "swaps" || return
	proc_after=$(grep '^msw_dev ' /proc/modules)
	# name size refcount users state: the refcount, users and state stay
	expect "$(echo "$proc_before" | cut -d' ' -f1,3-5)" \
		"$(echo "$proc_after" | cut -d' ' -f1,3-5)" "/proc/modules" || return
	[ "$text_before" != "$(cat /sys/module/msw_dev/sections/.text)" ] ||
		{ fail ".text did not move"; return; }
	lsmod | grep -q '^msw_dev ' || { fail "lsmod"; return; }
	dmesg_has "msw_dev: swapped in" || return
	for f in total_ns quiescence_ns resolution_ns relocation_ns relink_ns \
		 replace_ns stopped_ns; do
		[ "$(hs msw_dev $f)" -gt 0 ] 2>/dev/null ||
			[ $f = relink_ns ] || [ $f = replace_ns ] ||
			{ fail "hotswap/$f is $(hs msw_dev $f)"; return; }
	done
	pass
}

test_slab_ctor() {
	start slab_ctor
	# A fresh object of msw_dev's slab cache is built by v2's constructor.
	expect 2 "$(cat /sys/module/msw_dev/parameters/ctor_version)" \
		"constructor after the swap to v2" && pass
}

test_users() {
	start users
	expect ok "$(load msw_user_v1)" "load msw_user" || return
	expect 2 "$(param dev_version)" "dev_version" || return
	expect 2 "$(param via_pointer)" "via_pointer" || return
	[ -e /sys/module/msw_dev/holders/msw_user ] || { fail "holders"; return; }
	dmesg_has "msw_user: uses a hotswappable module: keeping" || return
	refs=$(cat /sys/module/msw_dev/refcnt)
	c=$(count)
	expect ok "$(load v3)" "swap to v3 with a user" || return
	expect 3 "$(param dev_version)" "dev_version after swap" || return
	expect 3 "$(param via_pointer)" "via_pointer after swap" || return
	expect $((c + 1)) "$(param next)" "next after swap" || return
	expect v3 "$(version)" "device" || return
	expect hello-from-v3 "$(field banner "$(msw read $DEV)")" "banner" || return
	expect 1 "$(hs msw_dev users)" "users re-linked" || return
	expect "$refs" "$(cat /sys/module/msw_dev/refcnt)" "refcnt" || return
	[ -e /sys/module/msw_dev/holders/msw_user ] || { fail "holders after"; return; }
	expect "error 11" "$(msw unload msw_dev | cut -d' ' -f1-2)" \
		"rmmod of a used module" || return
	pass
}

test_failures() {
	start refuse_layout
	refuse v2_fail_layout 8 "static section .static_old.msw_state has size" && pass
	start refuse_old_symbol
	refuse v2_fail_old 2 "_old_msw_missing is unresolved" && pass
	start refuse_relocation
	refuse v2_fail_reloc 8 "overflow in relocation" && pass
	start refuse_replace_error
	refuse v2_fail_replace 22 "replace() failed: -22" && pass
	start refuse_dangling
	refuse v2_fail_dangling 22 "still points into the replaced version" &&
		dmesg_has "the refused version's memory is kept" && pass
	start refuse_positive_replace
	refuse v2_fail_positive 22 "replace() returned 1; an error is negative" && pass
	start refuse_cancel
	refuse v3_fail_cancel 11 "v3 swap cancelled" && pass
	start refuse_unexported
	refuse v2_drop_export 8 "user msw_user needs msw_dev_next, which the new version does not export" && pass
	start refuse_export_clash
	expect ok "$(ko $M/block/msw_block.ko)" "load msw_block" &&
		refuse v2_fail_clash 8 "exports duplicate symbol msw_block_release (owned by msw_block)" &&
		expect ok "$(msw unload msw_block)" "rmmod msw_block" && pass
	start refuse_prepare
	refuse v3_fail_prepare 19 "prepare() failed: -19" || return
	dmesg | grep -q "v3 swap cancelled" && { fail "cancel() ran after a failed prepare()"; return; }
	pass
	start refuse_namespace
	refuse v2_export_ns 8 "user msw_user uses msw_dev_version from namespace MSW_NS, which it does not import" && pass
	start refuse_percpu
	refuse v2_fail_percpu 95 "cannot hotswap a module with section .data..percpu" && pass
	start refuse_ctor
	refuse v2_fail_ctor 22 "slab cache msw_objs has constructor msw_obj_ctor+0x0" &&
		expect 3 "$(cat /sys/module/msw_dev/parameters/ctor_version)" \
			"constructor after the refusal" && pass
	start refuse_abi
	refuse v2_fail_abi 8 ".modswap.info has ABI 99" && pass
	start refuse_malformed
	head -c 4000 $M/v2/msw_dev.ko > /tmp/truncated.ko
	mkdir -p $M/truncated
	cp /tmp/truncated.ko $M/truncated/msw_dev.ko
	# Under signature enforcement (the distro profile) the signature check
	# comes first and rejects it; else the ELF checks do.
	if [ "$(cat /sys/module/module/parameters/sig_enforce 2>/dev/null)" = Y ]; then
		refuse truncated 129 "Loading of unsigned module is rejected" && pass
	else
		refuse truncated 8 "Invalid ELF" && pass
	fi
	start refuse_unprivileged
	before=$(msw read $DEV)
	expect "error 1" "$(msw swap-as 65534 $M/v2/msw_dev.ko | cut -d' ' -f1-2)" \
		"swap without CAP_SYS_MODULE" &&
		expect "$(echo "$before" | cut -d' ' -f1)" "$(version)" "version" &&
		pass
	start after_refusals
	expect 3 "$(param dev_version)" "user still reaches v3" &&
		expect v3 "$(version)" "device still v3" && pass
	# A version that defines a static call and calls it: its call site is
	# registered for the new code and the old one's removed (a leftover
	# would be patched in freed text by the next update).
	start static_call_sites
	expect ok "$(load v2_static_call)" "swap to a v2 with a static call" || return
	expect v2 "$(version)" "v2 answers through its static call" || return
	expect ok "$(load v3)" "back to v3" || return
	expect v3 "$(version)" "v3 runs" || return
	expect ok "$(load v2_static_call)" "the static call version again" || return
	expect v2 "$(version)" "v2 answers through its static call again" || return
	expect ok "$(load v3)" "back to v3 again" || return
	pass
}

test_sleeping() {
	start sleeping
	echo 200 > /sys/module/module/parameters/hotswap_backoff_ms
	echo 4 > /sys/module/module/parameters/hotswap_tries
	start_sleeper || return
	c=$(count)
	expect "error 16" "$(load v2 | cut -d' ' -f1-2)" "swap while busy" || return
	dmesg_has "not quiescent after 4 tries: task $sleeper (msw) is in msw_read" || return
	expect v3 "$(version)" "old version still works" || return
	expect "$sleeper msw msw_read" "$(hs msw_dev busy | cut -d+ -f1)" "busy" || return
	msw wake $DEV
	wait $sleeper
	expect v3 "$(cut -d' ' -f1 /tmp/sleeper)" "sleeper woke up in v3" || return
	expect ok "$(load v2)" "swap once woken" || return
	expect v2 "$(version)" "now v2" || return
	echo 10 > /sys/module/module/parameters/hotswap_tries
	echo 5 > /sys/module/module/parameters/hotswap_backoff_ms
	pass
}

test_hammer() {
	start hammer
	rm -f /tmp/stop
	msw hammer $DEV 4 /tmp/stop > /tmp/hammer &
	hammer=$!
	sleep 1
	for b in v3 v1 v2 v3 v2 v1 v2; do
		r=$(load $b)
		[ "$r" = ok ] || { fail "swap to $b under load: $r"; touch /tmp/stop; wait $hammer; return; }
		[ "$(version)" = "${b%%_*}" ] || { fail "not $b"; touch /tmp/stop; wait $hammer; return; }
		sleep 0.3
	done
	touch /tmp/stop
	wait $hammer
	st=$?
	cat /tmp/hammer
	expect 0 $st "hammer exit status" || return
	grep -q "hammer: 0 of 4 processes failed" /tmp/hammer || { fail "hammer"; return; }
	# Every reader was served by each of the three versions.
	[ "$(grep -c ' v1 [1-9][0-9]* v2 [1-9][0-9]* v3 [1-9][0-9]*$' /tmp/hammer)" = 4 ] ||
		{ fail "a reader did not see every version: $(grep '^hammer [0-9]' /tmp/hammer)"; return; }
	pass
}

test_chain() {
	start chain
	for b in v3 v2 v1 v2 v3 v2 v1; do
		expect ok "$(load $b)" "swap to $b" || return
		expect "$b" "$(version)" "version" || return
		expect "${b#v}" "$(param dev_version)" "user sees $b" || return
	done
	pass
}

test_user_swap() {
	start user_swap
	expect "error 17" "$(load msw_user_v2 | cut -d' ' -f1-2)" \
		"swap of a non-hotswappable user" || return
	expect ok "$(msw unload msw_user)" "rmmod msw_user" || return
	expect ok "$(load msw_user_v1_hs)" "load hotswappable msw_user" || return
	expect ok "$(load msw_user_v2)" "swap msw_user" || return
	expect 2 "$(param user_version)" "user_version" || return
	expect 1 "$(param dev_version)" "dev_version" || return
	expect ok "$(load v3)" "swap msw_dev under the new user" || return
	expect 3 "$(param dev_version)" "new user re-linked" || return
	expect 3 "$(param via_pointer)" "new user's pointer re-linked" || return
	pass
}

test_rmmod() {
	start rmmod_after_swap
	expect ok "$(msw unload msw_user)" "rmmod msw_user" || return
	expect ok "$(msw unload msw_dev)" "rmmod msw_dev" || return
	grep -q '^msw_dev ' /proc/modules && { fail "still listed"; return; }
	[ -e /sys/module/msw_dev ] && { fail "sysfs still there"; return; }
	expect ok "$(load v2)" "fresh load of v2" || return
	mkdev
	expect "v2 count=1" "$(msw read $DEV | cut -d' ' -f1-2)" "fresh v2" || return
	expect ok "$(msw unload msw_dev)" "rmmod again" || return
	pass
}

# A user unloaded and loaded again while a swap backs off: the next try
# must re-link the user as it is now, not write through the mapping it
# made of the unloaded user's pages.
test_user_during_backoff() {
	start user_during_backoff
	expect ok "$(load v1)" "load v1" || return
	mkdev
	expect ok "$(load msw_user_v1)" "load msw_user" || return
	echo 300 > /sys/module/module/parameters/hotswap_backoff_ms
	echo 10 > /sys/module/module/parameters/hotswap_tries
	start_sleeper || return
	load v2 > /tmp/swap &
	swapper=$!
	sleep 1
	expect ok "$(msw unload msw_user)" "rmmod msw_user during the back-off" || return
	expect "error 16" "$(msw unload msw_dev | cut -d' ' -f1-2)" "rmmod of the module being swapped" || return
	expect ok "$(load msw_user_v1)" "load msw_user again" || return
	msw wake $DEV
	wait $sleeper
	wait $swapper
	expect ok "$(cat /tmp/swap)" "swap after the back-off" || return
	expect v2 "$(version)" "now v2" || return
	expect 2 "$(param dev_version)" "the new user is re-linked" || return
	expect 2 "$(param via_pointer)" "the new user's pointer is re-linked" || return
	echo 5 > /sys/module/module/parameters/hotswap_backoff_ms
	expect ok "$(msw unload msw_user)" "rmmod msw_user" || return
	expect ok "$(msw unload msw_dev)" "rmmod msw_dev" || return
	pass
}

# A user whose static call sites name msw_dev's key: the kernel sorted
# them at the user's load, so msw_dev cannot be swapped under it.
test_user_sorted() {
	start refuse_user_sorted
	expect ok "$(load v1)" "load v1" || return
	mkdev
	expect ok "$(load msw_user_sc)" "load a user with a static call" || return
	expect 1 "$(param via_static_call)" "static call" || return
	refuse v2 8 "user msw_user has .static_call_sites entries that use it" || return
	expect 1 "$(param via_static_call)" "static call after the refusal" || return
	expect ok "$(msw unload msw_user)" "rmmod msw_user" || return
	expect ok "$(load v2)" "swap once the user is gone" || return
	expect ok "$(msw unload msw_dev)" "rmmod msw_dev" || return
	pass
}

# kprobes: one on the old code, and one on a user's call site that the
# swap re-links, each keep the module busy until it is unregistered.
test_kprobes() {
	echo 2 > /sys/module/module/parameters/hotswap_tries
	start refuse_kprobe
	expect ok "$(load v1)" "load v1" || return
	mkdev
	expect ok "$(ko $M/kprobe/msw_kprobe.ko target=msw_read)" "kprobe on msw_read" || return
	msw read $DEV >/dev/null
	expect 1 "$(cat /sys/module/msw_kprobe/parameters/hits)" "the kprobe fired" || return
	refuse v2 16 "a kprobe at msw_read+0x0/.* \[msw_dev\] is registered on the old code\|ftrace: msw_read+0x[0-9a-f]*/.* \[msw_dev\] is traced" || return
	expect ok "$(msw unload msw_kprobe)" "rmmod msw_kprobe" || return
	expect ok "$(load v2)" "swap once the kprobe is gone" || return
	pass
	start refuse_kprobe_user
	expect ok "$(load msw_user_v1)" "load msw_user" || return
	expect ok "$(ko $M/kprobe/msw_kprobe.ko "target=get_dev_version call=1")" \
		"kprobe on msw_user's call of msw_dev_version" || return
	expect 2 "$(param dev_version)" "dev_version" || return
	expect 1 "$(cat /sys/module/msw_kprobe/parameters/hits)" "the kprobe fired" || return
	refuse v1 16 "a kprobe at get_dev_version+0x[0-9a-f]*/.* \[msw_user\] is on an instruction that the swap re-links" || return
	expect 2 "$(param dev_version)" "dev_version after the refusal" || return
	expect ok "$(msw unload msw_kprobe)" "rmmod msw_kprobe" || return
	expect ok "$(load v1)" "swap once the kprobe is gone" || return
	expect 1 "$(param dev_version)" "the user is re-linked" || return
	expect ok "$(msw unload msw_user)" "rmmod msw_user" || return
	expect ok "$(msw unload msw_dev)" "rmmod msw_dev" || return
	echo 10 > /sys/module/module/parameters/hotswap_tries
	pass
}

# The modswap command's swap: checks, finit_module(MODULE_INIT_HOTSWAP),
# the outcome with its timings, the busy task on -EBUSY.
test_cli_swap() {
	start cli_swap
	expect ok "$(load v1)" "load v1" || return
	mkdev
	out=$(modswap swap $M/v2/msw_dev.ko)
	expect 0 $? "modswap swap exit status" || return
	echo "$out" | grep -q "^msw_dev: swapped to $M/v2/msw_dev.ko" || { fail "modswap swap said: $out"; return; }
	echo "$out" | grep -q "^  stopped_ns  *[1-9]" || { fail "no timings: $out"; return; }
	expect v2 "$(version)" "version after modswap swap" || return
	out=$(modswap swap $M/v2_nohotswap/msw_dev.ko)
	expect 1 $? "exit status for a plain image" || return
	echo "$out" | grep -q "the image is not hotswappable" || { fail "plain image: $out"; return; }
	out=$(modswap swap --format json $M/v2_fail_layout/msw_dev.ko)
	expect 1 $? "exit status for a layout the kernel refuses" || return
	echo "$out" | grep -q '"code": 8' || { fail "layout: $out"; return; }
	out=$(modswap swap --check $M/v1/msw_dev.ko)
	expect 0 $? "--check" || return
	expect v2 "$(version)" "--check does not swap" || return
	echo 2 > /sys/module/module/parameters/hotswap_tries
	start_sleeper || return
	out=$(modswap swap $M/v1/msw_dev.ko)
	expect 1 $? "exit status when busy" || return
	echo "$out" | grep -q "busy: $sleeper msw msw_read" || { fail "busy: $out"; return; }
	msw wake $DEV
	wait $sleeper
	echo 10 > /sys/module/module/parameters/hotswap_tries
	expect ok "$(msw unload msw_dev)" "rmmod msw_dev" || return
	pass
}

# CPU hotplug during swaps: stop_machine() holds the CPU hotplug lock, so a
# CPU going off or on line waits for the stop, or the stop for it.
test_cpu_hotplug() {
	start cpu_hotplug
	cpu=/sys/devices/system/cpu/cpu3/online
	[ -w $cpu ] || { fail "$cpu is not writable"; return; }
	expect ok "$(load v1)" "load v1" || return
	mkdev
	rm -f /tmp/stop-hotplug
	(
		n=0
		while [ ! -e /tmp/stop-hotplug ]; do
			echo 0 > $cpu && echo 1 > $cpu && n=$((n + 1))
		done
		echo "hotplug: $n off/on cycles" > /tmp/hotplug
	) &
	hp=$!
	for b in v2 v1 v2 v1 v2 v1 v2 v1 v2 v1; do
		r=$(load $b)
		[ "$r" = ok ] && [ "$(version)" = $b ] && continue
		fail "swap to $b during CPU hotplug: $r, version $(version)"
		touch /tmp/stop-hotplug
		wait $hp
		return
	done
	touch /tmp/stop-hotplug
	wait $hp
	cat /tmp/hotplug
	grep -q "hotplug: [1-9][0-9]* off/on cycles" /tmp/hotplug ||
		{ fail "no CPU went off and on line: $(cat /tmp/hotplug)"; return; }
	expect 1 "$(cat $cpu)" "cpu3 online at the end" || return
	expect ok "$(msw unload msw_dev)" "rmmod msw_dev" || return
	pass
}

# ---- callbacks the kernel keeps into the module (msw_cb) ----

cbp() { cat /sys/module/msw_cb/parameters/$1; }
arm() { echo "$1" > /sys/module/msw_cb/parameters/arm; }
cbload() { ko "$M/$1/msw_cb.ko"; }

# cb_refuse BUILD ERRNO WHAT MESSAGE: a swap to BUILD, which forgets WHAT,
# is refused naming it, and v1 runs on.
cb_refuse() {
	r=$(cbload $1)
	expect "error $2" "$(echo "$r" | cut -d' ' -f1-2)" "swap to $1 with $3" || return 1
	dmesg_has "$4" || return 1
	expect 1 "$(cbp version)" "version after the refusal" || return 1
}

test_callbacks() {
	heap=/sys/module/module/parameters/hotswap_heap_depth
	echo 2 > /sys/module/module/parameters/hotswap_tries
	expect ok "$(ko $M/block/msw_block.ko)" "load msw_block" || return
	start cb_load
	expect ok "$(cbload cb_v1)" "load msw_cb v1" && pass
	# Pending callbacks, found with the heap scan off: the timers live in
	# an object that only the heap scan would reach.
	echo 0 > $heap
	start refuse_timer
	arm "timer 600000"
	cb_refuse cb_v2 16 timer "not quiescent after 2 tries: timer msw_cb_timer_fn+0x0/.* \[msw_cb\] is pending" &&
		expect "timer msw_cb_timer_fn" "$(hs msw_cb busy | cut -d+ -f1)" "busy" &&
		pass
	arm cancel
	start refuse_delayed_work
	arm "dwork 600000"
	cb_refuse cb_v2 16 "delayed work" "delayed work msw_cb_dwork_fn+0x0/.* \[msw_cb\] is pending" && pass
	arm cancel
	start refuse_hrtimer
	arm "hrtimer 600000"
	cb_refuse cb_v2 16 hrtimer "hrtimer msw_cb_hrtimer_fn+0x0/.* \[msw_cb\] is pending" && pass
	arm cancel
	start refuse_queued_work
	arm queued
	cb_refuse cb_v2 16 "queued work" "work msw_cb_queued_fn+0x0/.* \[msw_cb\] is queued" &&
		{ arm release; expect 1 "$(cbp queued_ran)" "queued work ran v1"; } && pass
	# With nothing pending, the heap scan finds what replace() forgot: the
	# timers' functions (a later mod_timer() would call them), then the
	# object's function pointer.
	echo 3 > $heap
	start refuse_heap_pointer
	cb_refuse cb_v2 22 "stale timers" "a pointer into the replaced version (msw_cb_.*_fn+0x0" &&
		dmesg_has "reached from msw_cb+0x0/" || return
	arm heap
	cb_refuse cb_v2_timers 22 "heap pointer" "a pointer into the replaced version (msw_cb_heap_fn+0x0" &&
		{ arm call; expect 1 "$(cbp heap_ran)" "heap call ran v1"; } || return
	# That replace() re-pointed the timers to the refused version, which
	# is therefore kept: a timer armed now runs its code, not freed memory.
	dmesg_has "the refused version's memory is kept" || return
	arm "timer 100"
	sleep 1
	expect 2 "$(cbp timer_ran)" "timer ran the refused version's kept code" && pass
	start callbacks_repointed
	arm "timer 1500"; arm "dwork 1500"; arm "hrtimer 1500"; arm queued
	expect ok "$(cbload cb_v2_repoint)" "swap with every callback re-pointed" || return
	expect 2 "$(cbp version)" "version" || return
	arm release
	sleep 3
	arm call
	for c in timer dwork hrtimer queued heap; do
		expect 2 "$(cbp ${c}_ran)" "$c ran after the swap" || return
	done
	pass
	# A task asleep 150 calls deep in another module is not in msw_cb.
	start deep_stack
	echo 150 > /sys/module/msw_block/parameters/deep &
	deep=$!
	sleep 0.5
	expect ok "$(cbload cb_v2_repoint)" "swap beside a deep stack" || return
	wait $deep
	expect ok "$(msw unload msw_cb)" "rmmod msw_cb" || return
	expect ok "$(msw unload msw_block)" "rmmod msw_block" || return
	echo 10 > /sys/module/module/parameters/hotswap_tries
	pass
}

# vmalloc and vmap areas in use (module memory, staging copies, aliases)
vmalloc_areas() { grep -cE ' (vmalloc|vmap)$' /proc/vmallocinfo; }
meminfo() { sed -n "s/^$1: *\([0-9]*\) kB/\1/p" /proc/meminfo; }

test_leaks() {
	start leaks
	expect ok "$(load v1)" "load v1" || return
	mkdev
	expect ok "$(load msw_user_v1)" "load msw_user" || return
	load v2 >/dev/null; load v1 >/dev/null
	sleep 2; sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null
	vm0=$(vmalloc_areas); used0=$(meminfo VmallocUsed); slab0=$(meminfo Slab)
	i=0
	while [ $i -lt 100 ]; do
		b=v2; [ $((i % 2)) = 1 ] && b=v1
		r=$(load $b)
		[ "$r" = ok ] || { fail "swap $i to $b: $r"; return; }
		i=$((i + 1))
	done
	expect v1 "$(version)" "after 100 swaps" || return
	expect 1 "$(param dev_version)" "user after 100 swaps" || return
	expect 102 "$(hs msw_dev swaps)" "swap count" || return
	# Replaced versions are freed after a grace period, from a work item.
	sleep 2; sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null
	vm1=$(vmalloc_areas); used1=$(meminfo VmallocUsed); slab1=$(meminfo Slab)
	echo "leaks: vmalloc areas $vm0 -> $vm1, VmallocUsed $used0 -> $used1 kB, Slab $slab0 -> $slab1 kB"
	expect "$vm0" "$vm1" "vmalloc areas" || return
	# VmallocUsed also counts kernel stacks with VMAP_STACK (the distro
	# profile): kworkers come and go by 16 kB. A page kept per swap would
	# show as 400 kB.
	[ $((used1 - used0)) -lt 64 ] || { fail "VmallocUsed grew by $((used1 - used0)) kB"; return; }
	[ $((slab1 - slab0)) -lt 256 ] || { fail "Slab grew by $((slab1 - slab0)) kB"; return; }
	# 300 swaps that fail after the new version's image was kept, when
	# the arguments are copied: each frees what it kept.
	expect ok "$(msw swap-badargs $M/v2/msw_dev.ko 300)" "swaps with bad arguments" || return
	sleep 2; sync; echo 3 > /proc/sys/vm/drop_caches
	slab2=$(meminfo Slab)
	echo "leaks: Slab $slab1 -> $slab2 kB after 300 failed swaps"
	[ $((slab2 - slab1)) -lt 256 ] ||
		{ fail "Slab grew by $((slab2 - slab1)) kB over 300 failed swaps"; return; }
	expect v1 "$(version)" "after the failed swaps" || return
	expect ok "$(msw unload msw_user)" "rmmod msw_user" || return
	expect ok "$(msw unload msw_dev)" "rmmod msw_dev" || return
	pass
}

# A module loaded without an exit function is permanent, and stays so
# across swaps, whatever the new version has. It stays loaded: the last
# tests swap it.
test_permanent() {
	start permanent
	expect ok "$(load v1_noexit)" "load a permanent v1" || return
	mkdev
	expect "error 16" "$(msw unload msw_dev | cut -d' ' -f1-2)" "rmmod of a permanent module" || return
	expect ok "$(load v2)" "swap to a v2 that has an exit function" || return
	expect v2 "$(version)" "v2 runs" || return
	expect "error 16" "$(msw unload msw_dev | cut -d' ' -f1-2)" "rmmod after the swap" || return
	pass
}

# ---- the facilities of a distribution's kernel (the distro profile) ----

T=/sys/kernel/tracing
other() { [ "$(version)" = v1 ] && echo v2 || echo v1; }
traced() { echo > $T/trace; msw read $DEV >/dev/null; grep -q " msw_read" $T/trace; }
untrace() { echo nop > $T/current_tracer; echo > $T/set_ftrace_filter; }

# ftrace: the function tracer on a function of the loaded version refuses
# the swap (its text would be freed under the tracer) and goes on tracing
# it; once the tracer is off the swap goes through, and the new version's
# function of that name can be traced.
test_ftrace() {
	start ftrace_traced
	[ -e $T/trace ] || mount -t tracefs nodev $T
	echo msw_read > $T/set_ftrace_filter || { fail "cannot filter on msw_read"; return; }
	echo function > $T/current_tracer
	traced || { fail "msw_read not traced before the swap"; untrace; return; }
	refuse "$(other)" 16 "ftrace: msw_read+0x[0-9a-f]*/.* \[msw_dev\] is traced" || { untrace; return; }
	traced || { fail "msw_read no longer traced after the refusal"; untrace; return; }
	untrace
	b=$(other)
	expect ok "$(load $b)" "swap once the tracer is off" || return
	expect $b "$(version)" "$b runs" || return
	echo msw_read > $T/set_ftrace_filter || { fail "the new msw_read cannot be filtered"; return; }
	echo function > $T/current_tracer
	traced || { fail "the new version's msw_read is not traced"; untrace; return; }
	untrace
	pass
}

# BTF: the new version's BTF (its .BTF section, extracted on the host into
# msw_dev.btf) replaces the old one's in /sys/kernel/btf; while a BTF file
# descriptor holds the old one, the swap is busy.
test_btf() {
	start btf_moves
	B=/sys/kernel/btf/msw_dev
	v=$(version)
	cmp -s $B $M/$v/msw_dev.btf || { fail "$B is not $v's .BTF before the swap"; return; }
	b=$(other)
	expect ok "$(load $b)" "swap to $b" || return
	cmp -s $B $M/$b/msw_dev.btf || { fail "$B is not $b's .BTF after the swap"; return; }
	pass

	start btf_busy
	msw btf-hold msw_dev > /tmp/btfhold &
	holder=$!
	i=0
	while ! grep -q '^ok' /tmp/btfhold && [ $i -lt 20 ]; do sleep 1; i=$((i + 1)); done
	grep -q '^ok' /tmp/btfhold || { fail "no BTF descriptor: $(cat /tmp/btfhold)"; kill $holder; return; }
	echo 2 > /sys/module/module/parameters/hotswap_tries
	refuse "$(other)" 16 "not quiescent after 2 tries: BTF: the old version's BTF is held by BPF programs, maps or file descriptors"
	r=$?
	echo 10 > /sys/module/module/parameters/hotswap_tries
	kill $holder
	wait $holder
	[ $r = 0 ] || return
	b=$(other)
	expect ok "$(load $b)" "swap once the descriptor is closed" || return
	cmp -s $B $M/$b/msw_dev.btf || { fail "$B is not $b's .BTF"; return; }
	pass
}

# Static calls that the kernel owns (PREEMPT_DYNAMIC's might_resched() and
# cond_resched(), which msw_dev's read path calls): after swaps, and once
# the old versions are freed, switching the preemption mode patches the
# call sites of the running version and no other (a site left of a freed
# version would be written in unmapped memory), and the new code runs.
test_static_call_kernel() {
	start static_call_kernel
	P=/sys/kernel/debug/sched/preempt
	[ -e $P ] || mount -t debugfs none /sys/kernel/debug
	[ -e $P ] || { fail "no $P"; return; }
	for i in 1 2 3; do
		b=$(other)
		expect ok "$(load $b)" "swap to $b" || return
	done
	sleep 2
	for m in full none voluntary; do
		echo $m > $P || { fail "preempt=$m"; return; }
		grep -q "($m)" $P || { fail "preempt is $(cat $P), not $m"; return; }
		msw read $DEV > /dev/null || { fail "read under preempt=$m"; return; }
	done
	pass
}

# Jump labels: a version with a static key of its own and one of
# msw_block's (another module's). Its entries follow each swap: flipping
# msw_block's key after that version was swapped out (and freed) patches
# only the running code (an entry left behind would be written in freed
# text), and a version swapped in starts with its own key in its initial
# state and msw_block's as it is.
test_jump_labels() {
	start jump_labels
	K=/sys/module/msw_dev/parameters
	BK=/sys/module/msw_block/parameters/key
	grep -q "^msw_block " /proc/modules ||
		expect ok "$(ko $M/block/msw_block.ko)" "load msw_block" || return
	expect ok "$(load v2_key)" "swap to a version with static keys" || return
	expect "own=0 block=0" "$(cat $K/keys)" "keys after the swap" || return
	echo 1 > $K/own_key
	echo 1 > $BK
	expect "own=1 block=1" "$(cat $K/keys)" "keys flipped" || return
	expect ok "$(load v1)" "swap away" || return
	sleep 2
	echo 0 > $BK
	echo 1 > $BK
	expect ok "$(load v2_key)" "swap to the keys version again" || return
	expect "own=0 block=1" "$(cat $K/keys)" "keys in the new version" || return
	echo 0 > $BK
	expect "own=0 block=0" "$(cat $K/keys)" "msw_block's key off" || return
	expect ok "$(load v1)" "swap away again" || return
	expect ok "$(msw unload msw_block)" "rmmod msw_block, which no version uses now" || return
	pass
}

# Dynamic debug: msw_read's pr_debug() site (the same in every version),
# enabled before a swap, is enabled in the new version, listed once, and
# prints from the new code; disabled, it stays disabled across a swap.
test_dyndbg() {
	start dyndbg_sites
	C=/proc/dynamic_debug/control
	site() { grep "\[msw_dev\]msw_read " $C; }
	echo "module msw_dev func msw_read +p" > $C || { fail "cannot enable msw_read's pr_debug"; return; }
	site | grep -q " =p " || { fail "not enabled: $(site)"; return; }
	b=$(other)
	expect ok "$(load $b)" "swap to $b with the site enabled" || return
	expect 1 "$(site | wc -l)" "sites of msw_read after the swap" || return
	site | grep -q " =p " || { fail "the site lost its flags: $(site)"; return; }
	dmesg -c > /dev/null
	msw read $DEV > /dev/null
	dmesg | grep -q "msw_dev: read " || { fail "the new version's pr_debug() did not print"; return; }
	echo "module msw_dev -p" > $C
	b=$(other)
	expect ok "$(load $b)" "swap to $b with the site disabled" || return
	site | grep -q " =_ " || { fail "the site was enabled: $(site)"; return; }
	dmesg -c > /dev/null
	msw read $DEV > /dev/null
	dmesg | grep -q "msw_dev: read " && { fail "a disabled pr_debug() printed"; return; }
	pass
}

# Signatures and compression. The distro profile's kernel boots with
# module.sig_enforce=1 and the host signed every selftest module with the
# profile's key: an unsigned v2 and a v2 signed with another key are
# refused as their loads would be, the loaded version running on; a signed,
# xz-compressed version swaps through finit_module() with
# MODULE_INIT_COMPRESSED_FILE, as kmod loads Debian's modules.
test_signing() {
	start sig_refused
	expect Y "$(cat /sys/module/module/parameters/sig_enforce)" "signature enforcement" || return
	refuse v2_unsigned 129 "Loading of unsigned module is rejected" || return
	refuse v2_badsig 129 "Loading of module with unavailable key is rejected" || return
	pass
	start xz_swap
	for i in 1 2; do
		b=$(other)
		expect ok "$(msw swap $M/${b}_xz/msw_dev.ko.xz)" "swap to an xz-compressed $b" || return
		expect $b "$(version)" "$b runs" || return
	done
	pass
}

# Only on a kernel that has the facilities (BTF, tracefs): the host expects
# these tests from the distro profile and no other.
test_facilities() {
	[ -e /sys/kernel/btf/vmlinux ] || return 0
	test_ftrace
	test_btf
	test_static_call_kernel
	test_jump_labels
	test_dyndbg
	test_signing
}

# Last: modules_disabled cannot be turned off again.
test_modules_disabled() {
	start modules_disabled
	expect ok "$(load v1)" "load v1" || return
	mkdev
	echo 1 > /proc/sys/kernel/modules_disabled
	expect "error 1" "$(load v2 | cut -d' ' -f1-2)" "swap with modules disabled" || return
	expect v1 "$(version)" "still v1" || return
	pass
}

run_tests() {
	test_fresh_load
	test_eexist
	test_idle_swap
	test_slab_ctor
	test_users
	test_failures
	test_sleeping
	test_hammer
	test_chain
	test_user_swap
	test_rmmod
	test_user_during_backoff
	test_user_sorted
	test_kprobes
	test_cli_swap
	test_cpu_hotplug
	test_callbacks
	test_leaks
	test_permanent
	test_facilities
	test_modules_disabled
	echo "MSW-RESULT $([ $FAILED = 0 ] && echo PASS || echo FAIL)"
}

# ---- benchmark: prints MSW-BENCH lines that the host turns into ratios ----

run_bench() {
	n=${BENCH_N:-40}
	echo "MSW-BENCH kernel $(uname -r) hotswap=$([ -e /sys/module/module/parameters/hotswap_tries ] && echo 1 || echo 0)"
	# Normal loads: a module that is neither hotswappable nor a user of
	# one (fat), the hotswappable msw_dev, and msw_user, which uses it.
	echo "MSW-BENCH load fat $(msw bench-load $M/fat/fat.ko fat $n)"
	echo "MSW-BENCH load v1 $(msw bench-load $M/v1/msw_dev.ko msw_dev $n)"
	echo "MSW-BENCH size v1 $(wc -c < $M/v1/msw_dev.ko)"
	msw load $M/v1/msw_dev.ko >/dev/null
	mkdev
	echo "MSW-BENCH load msw_user_v1 $(msw bench-load $M/msw_user_v1/msw_user.ko msw_user $n)"
	echo "MSW-BENCH size msw_user_v1 $(wc -c < $M/msw_user_v1/msw_user.ko)"
	msw load $M/msw_user_v1/msw_user.ko >/dev/null
	for i in 1 2 3; do
		echo "MSW-BENCH read before $(msw bench-read $DEV 20000)"
	done
	if [ -e /sys/module/msw_dev/hotswap ]; then
		echo "MSW-BENCH kept msw_dev $(hs msw_dev kept_bytes)"
		echo "MSW-BENCH kept msw_user $(hs msw_user kept_bytes)"
		echo "MSW-BENCH resolve msw_user $(hs msw_user load_resolution_ns)"
		i=0
		while [ $i -lt $n ]; do
			b=v2; [ $((i % 2)) = 1 ] && b=v1
			msw swap $M/$b/msw_dev.ko >/dev/null
			s=
			for f in total_ns quiescence_ns tries resolution_ns \
				 relocation_ns relink_ns users replace_ns stopped_ns; do
				s="$s $f=$(hs msw_dev $f)"
			done
			echo "MSW-BENCH swap$s"
			i=$((i + 1))
		done
		echo "MSW-BENCH swapcall $(msw bench-swap $M/v1/msw_dev.ko $M/v2/msw_dev.ko $n)"
		# An even number of swaps: v1 runs again, the same code as before.
		for i in 1 2 3; do
			echo "MSW-BENCH read after $(msw bench-read $DEV 20000) $(version)"
		done
	fi
	echo "MSW-RESULT PASS"
}

# ---- a kernel built with the series but CONFIG_MODULE_HOTSWAP off ----

run_off() {
	start off_load
	expect ok "$(load v1)" "load of a hotswappable image" || return
	mkdev
	expect v1 "$(version)" "device" || return
	[ -e /sys/module/msw_dev/hotswap ] && { fail "hotswap state without CONFIG_MODULE_HOTSWAP"; return; }
	expect "error 17" "$(msw load $M/v2/msw_dev.ko | cut -d' ' -f1-2)" "second load of the name" || return
	expect "error 22" "$(msw swap $M/v2/msw_dev.ko | cut -d' ' -f1-2)" \
		"MODULE_INIT_HOTSWAP without CONFIG_MODULE_HOTSWAP" || return
	expect ok "$(load msw_user_v1)" "load of a user" || return
	expect 1 "$(param dev_version)" "user" || return
	expect ok "$(msw unload msw_user)" "rmmod msw_user" || return
	expect ok "$(msw unload msw_dev)" "rmmod msw_dev" || return
	pass
	echo "MSW-RESULT $([ $FAILED = 0 ] && echo PASS || echo FAIL)"
}

case $1 in
test) run_tests ;;
off) run_off ;;
bench) run_bench ;;
*) echo "usage: run.sh test|bench|off"; echo "MSW-RESULT FAIL" ;;
esac
