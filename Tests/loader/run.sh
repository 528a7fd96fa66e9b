#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Loader tests on the real kernel (root): load/connect/stats/unload, rejections,
# replace under load, attach kinds added and removed by replace.
# Everything runs in a private netns and a test cgroup (Tests/e2e/lib.sh) and is
# removed on exit, also on failure.
#
#   Tests/loader/run.sh [TEST...]     tests: basic rejects bundle_checks tar replace
#                                     attach_kinds update update_compiled images metrics fuzz_replay
#
# Skips (exit 0) without root/BTF/cgroup2 unless CI=1. Needs the loader built
# (make -C bpf-runtime/loader; built here if missing), clang, protoc, python3
# with protobuf.
set -u -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../e2e/lib.sh
source "$ROOT/Tests/e2e/lib.sh"

if [ ! -x "$E2E_LOADER" ] && [ "$(id -u)" = 0 ]; then
	make -s -C "$ROOT/bpf-runtime/loader" || exit 1
fi
if ! why=$(e2e_can_run 2>&1); then
	if [ "${CI:-}" = 1 ]; then
		echo "FAIL: loader tests cannot run: $why" >&2
		exit 1
	fi
	echo "SKIP: loader tests: $why"
	exit 0
fi

SVC=10.96.0.1:80
PORT_A=18080
PORT_B=18081
PORT_C=18082
NCPUS=$("$E2E_PYTHON" -c 'import sys
n=0
for part in open("/sys/devices/system/cpu/possible").read().strip().split(","):
    a,_,b=part.partition("-"); n+=int(b or a)-int(a)+1
print(n)')
FX_TAGS=""
OUT=""
RC=0

run() { # run CMD...: output in $OUT, exit code in $RC
	OUT=$("$@" 2>&1)
	RC=$?
}

expect_rc() { # expect_rc RC PATTERN WHAT CMD...
	local want=$1 pat=$2 what=$3
	shift 3
	run "$@"
	[ "$RC" = "$want" ] || e2e_fail "$what: exit code $RC, expected $want; output:
$OUT"
	if [ -n "$pat" ] && ! grep -qE -- "$pat" <<<"$OUT"; then
		e2e_fail "$what: output does not match /$pat/:
$OUT"
	fi
	e2e_log "ok: $what (exit $RC: $(grep -m1 -E -- "${pat:-.}" <<<"$OUT"))"
}

json() { # json EXPR: evaluates EXPR on the JSON document in stdin (bound to d)
	"$E2E_PYTHON" -c 'import json,sys; d=json.load(sys.stdin); r=eval(sys.argv[1]); print(" ".join(map(str,r)) if isinstance(r,(list,tuple)) else r)' "$1"
}

# x2b_ programs in the kernel with this run's fixture tags (bundles are built with
# --run-id $$, so other users' and other runs' x2b_ programs do not count).
fixture_prog_ids() {
	bpftool prog show -j | json "[p['id'] for p in d if p.get('name','').startswith('x2b_') and p.get('tag') in '$FX_TAGS'.split()]"
}

wait_gone() { # wait_gone KIND ID...: KIND prog|link, polls up to 5 s
	local kind=$1 id i
	shift
	for id in "$@"; do
		for i in $(seq 100); do
			bpftool "$kind" show id "$id" >/dev/null 2>&1 || continue 2
			sleep 0.05
		done
		e2e_fail "$kind id $id still exists"
	done
}

assert_nothing_left() { # assert_nothing_left NAME [PROG_IDS_BEFORE]
	local name=$1 before=${2:-} id i left
	[ ! -e "$XDS2BPF_BPFFS/$name" ] || e2e_fail "pins left at $XDS2BPF_BPFFS/$name: $(ls -R "$XDS2BPF_BPFFS/$name")"
	[ ! -e "$XDS2BPF_STATE_DIR/$name" ] || e2e_fail "state left at $XDS2BPF_STATE_DIR/$name"
	[ -z "$(bpftool cgroup show "$E2E_CGROUP" 2>/dev/null)" ] ||
		e2e_fail "programs still attached to $E2E_CGROUP: $(bpftool cgroup show "$E2E_CGROUP")"
	if [ -n "$FX_TAGS" ]; then
		for i in $(seq 100); do
			left=""
			for id in $(fixture_prog_ids); do
				[[ " $before " == *" $id "* ]] || left="$left $id"
			done
			[ -z "$left" ] && return 0
			sleep 0.05
		done
		e2e_fail "fixture programs left in the kernel:$left"
	fi
}

make_bundle() { # make_bundle DIR ARGS...
	local dir=$1
	shift
	"$E2E_PYTHON" "$HERE/make-fixture-bundle.py" "$dir" --run-id $$ "$@" >/dev/null ||
		e2e_fail "make-fixture-bundle.py $*"
}

connect_is() { # connect_is WANT WHAT [client args]
	local want=$1 what=$2 got
	shift 2
	got=$(e2e_connect "$SVC" "$@")
	e2e_expect_eq "$want" "$got" "$what"
}

# --- load, connect, stats, unload -------------------------------------------------
test_basic() {
	local name=basic progs link id stats_json i got
	connect_is "error: ENETUNREACH Network is unreachable" "no bundle: the service address is unreachable"
	expect_rc 0 "loaded 'basic'" "load A" e2e_load "$B/a" "$name"

	run e2e_loader status --name "$name" --json
	[ "$RC" = 0 ] || e2e_fail "status: $OUT"
	progs=$(json "[p['id'] for p in d[0]['programs']]" <<<"$OUT")
	link=$(json "[l['link_id'] for l in d[0]['attach_points']]" <<<"$OUT")
	e2e_expect_eq "$E2E_CGROUP" "$(json "d[0]['attach_points'][0]['cgroup']" <<<"$OUT")" "status records the cgroup"
	e2e_expect_eq "False" "$(json "d[0]['needs_http']" <<<"$OUT")" "status shows needs_http"
	e2e_expect_eq "0 0" "$(json "'%d %d' % (d[0]['refused_fail_closed'], d[0]['bypassed_filters'])" <<<"$OUT")" \
		"status: nothing refused or bypassed"
	FX_TAGS=$(for id in $progs; do bpftool prog show id "$id" -j | json "d['tag']"; done | tr '\n' ' ')
	bpftool cgroup show "$E2E_CGROUP" | grep -q x2b_connect4 || e2e_fail "x2b_connect4 not attached to $E2E_CGROUP"
	bpftool link show id "$link" >/dev/null || e2e_fail "link $link not found"
	e2e_log "programs $progs (tags $FX_TAGS), link $link"

	for i in $(seq 20); do
		got=$(e2e_connect "$SVC")
		[ "$got" = backend-a ] || e2e_fail "connect $i: expected backend-a, got '$got'"
	done
	e2e_log "ok: 20 connects reached backend-a"
	got=$(e2e_in_cgroup "$E2E_PYTHON" "$E2E_DIR/client.py" 10.96.0.2:80)
	e2e_expect_eq "error: ENETUNREACH Network is unreachable" "$got" "unknown service stays unreachable"

	run e2e_loader stats --name "$name" --json
	[ "$RC" = 0 ] || e2e_fail "stats: $OUT"
	stats_json=$OUT
	e2e_expect_eq 21 "$(json "d['global']['seen']" <<<"$stats_json")" "stats: global seen"
	e2e_expect_eq 1 "$(json "d['global']['unmatched']" <<<"$stats_json")" "stats: global unmatched"
	e2e_expect_eq $((7 * NCPUS)) "$(json "d['global']['family_mismatch']" <<<"$stats_json")" \
		"stats: per-CPU image replicated to $NCPUS CPUs"
	e2e_expect_eq "fixture_listener 20" "$(json "[d['listeners'][0]['name'], d['listeners'][0]['connects']]" <<<"$stats_json")" \
		"stats: per-listener count with name"
	e2e_expect_eq "fixture_backend_$PORT_A 20" "$(json "[d['clusters'][0]['name'], d['clusters'][0]['connects']]" <<<"$stats_json")" \
		"stats: per-cluster count with name"
	expect_rc 0 "fixture_listener +10.96.0.1:80 +20" "stats text" e2e_loader stats --name "$name"
	expect_rc 0 "x2b_connect4 +id" "status text" e2e_loader status

	expect_rc 0 "unloaded 'basic'" "unload" e2e_loader unload --name "$name"
	# shellcheck disable=SC2086
	wait_gone prog $progs
	wait_gone link "$link"
	assert_nothing_left "$name"
	e2e_log "ok: unload removed pins, state, link $link and programs $progs"
	connect_is "error: ENETUNREACH Network is unreachable" "after unload the service is unreachable again"
	expect_rc 1 "no bundle named" "unload twice" e2e_loader unload --name "$name"
}

# --- rejections: clear message, non-zero exit, nothing left ----------------------
test_rejects() {
	local before point
	before=$(fixture_prog_ids)

	expect_rc 1 "incomplete: 'maps/x2b_svc.bin' is listed in the manifest but missing" \
		"reject: missing file" e2e_load "$B/missing" rej
	assert_nothing_left rej "$before"

	expect_rc 1 "'x2b.bpf.c': sha256 mismatch" "reject: wrong sha256" e2e_load "$B/tampered" rej
	assert_nothing_left rej "$before"

	expect_rc 1 "'x2b.bpf.o' has 100 bytes" "reject: wrong size" e2e_load "$B/truncated" rej
	assert_nothing_left rej "$before"

	expect_rc 1 "bundle ABI version 999 does not match" "reject: wrong ABI version" e2e_load "$B/badabi" rej
	assert_nothing_left rej "$before"

	expect_rc 1 "not a bundle" "reject: not a bundle" e2e_load "$E2E_TMP" rej
	assert_nothing_left rej "$before"

	expect_rc 1 "cgroup .* does not exist" "reject: non-existent cgroup" \
		e2e_loader load "$B/a" --cgroup "$E2E_CGROUP_ROOT/xds2bpf-missing-$$" --name rej
	assert_nothing_left rej "$before"
	expect_rc 1 "is not a cgroup v2 directory" "reject: not a cgroup" \
		e2e_loader load "$B/a" --cgroup "$E2E_TMP" --name rej
	assert_nothing_left rej "$before"

	expect_rc 0 "loaded 'inuse'" "load A as 'inuse'" e2e_load "$B/a" inuse
	expect_rc 1 "name 'inuse' is already in use" "reject: name already in use" e2e_load "$B/b" inuse
	connect_is backend-a "the first bundle still serves after the refused load"
	expect_rc 0 "unloaded" "unload 'inuse'" e2e_loader unload --name inuse
	assert_nothing_left inuse "$before"

	expect_rc 1 "the verifier rejected program 'x2b_rewrite4'" "verify: verifier rejection summary" \
		e2e_loader verify "$B/broken"
	grep -q "processed [0-9]* insns" <<<"$OUT" || e2e_fail "summary lacks the instruction count: $OUT"
	grep -q "invalid mem access" <<<"$OUT" || e2e_fail "summary lacks the failing line: $OUT"
	expect_rc 1 "BEGIN|-- verifier log of 'x2b_rewrite4' --" "verify --verbose: whole log" \
		e2e_loader verify "$B/broken" --verbose
	grep -q "^0: " <<<"$OUT" || e2e_fail "--verbose does not print the whole log"
	expect_rc 1 "the verifier rejected program 'x2b_rewrite4'" "reject: load of a bundle the verifier refuses" \
		e2e_load "$B/broken" rej
	assert_nothing_left rej "$before"

	for point in load-after-fill load-after-attach load-after-pin; do
		expect_rc 1 "injected failure at '$point'" "cleanup after a failure at $point" \
			env XDS2BPF_TEST_FAIL=$point "$E2E_LOADER" load "$B/a" --cgroup "$E2E_CGROUP" --name rej
		assert_nothing_left rej "$before"
		connect_is "error: ENETUNREACH Network is unreachable" "nothing attached after $point"
	done

	expect_rc 2 "missing command" "usage: no command" e2e_loader
	expect_rc 2 "load needs --cgroup" "usage: load without --cgroup" e2e_loader load "$B/a"
	expect_rc 2 "invalid name" "usage: bad name" e2e_loader load "$B/a" --cgroup "$E2E_CGROUP" --name ../x
	expect_rc 2 "unknown option" "usage: unknown option" e2e_loader status --bogus
	expect_rc 2 "unknown command" "usage: unknown command" e2e_loader frobnicate
	expect_rc 1 "no bundle named 'nope'" "stats of an unknown name" e2e_loader stats --name nope
	expect_rc 1 "no bundle named 'nope'" "replace of an unknown name" e2e_loader replace "$B/b" --name nope
	assert_nothing_left nope "$before"
}

# --- bundle checks: files that are no regular files, both objects, tail calls, manifest integrity
edit_bundle() { # edit_bundle NAME FROM EDIT-ARGS...: copy of bundle FROM as $B/NAME, edited
	local name=$1 from=$2
	shift 2
	rm -rf "${B:?}/$name"
	cp -r "$B/$from" "$B/$name"
	[ $# -eq 0 ] || "$E2E_PYTHON" "$HERE/edit-bundle.py" "$B/$name" "$@" || e2e_fail "edit-bundle.py $*"
}

hexof() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }

test_bundle_checks() {
	local before f
	before=$(fixture_prog_ids)

	# 1. a FIFO (or a symlink) in place of a bundle file: refused at once, never blocks
	for f in manifest.pb x2b.bpf.o maps/x2b_svc.bin; do
		edit_bundle fifo a
		rm "$B/fifo/$f" && mkfifo "$B/fifo/$f"
		expect_rc 1 "not a regular file" "reject: $f is a FIFO (no hang)" timeout 20 "$E2E_LOADER" verify "$B/fifo"
	done
	mkfifo "$E2E_TMP/bundle.fifo"
	expect_rc 1 "neither a directory nor a bundle archive" "reject: the bundle path is a FIFO" \
		timeout 20 "$E2E_LOADER" verify "$E2E_TMP/bundle.fifo"
	edit_bundle symlink a
	ln -sf /etc/hostname "$B/symlink/x2b.bpf.c"
	expect_rc 1 "'x2b.bpf.c' .*symbolic link" "reject: a bundle file is a symlink" e2e_loader verify "$B/symlink"
	edit_bundle symdir a
	mv "$B/symdir/maps" "$B/symdir/maps.real" && ln -s maps.real "$B/symdir/maps"
	expect_rc 1 "symbolic link" "reject: a bundle directory is a symlink" e2e_loader verify "$B/symdir"
	assert_nothing_left rej "$before"

	# 2. the HTTP object is checked even when the L4 object loads
	expect_rc 0 "ok: 2 programs.*\(l4 object\)" "verify: bundle with a valid HTTP object (L4 loads)" \
		env XDS2BPF_VARIANT=l4 "$E2E_LOADER" verify "$B/http_same"
	expect_rc 1 "program 'x2b_peer4' is in the object but not in the manifest" \
		"reject: HTTP object with other programs" env XDS2BPF_VARIANT=l4 "$E2E_LOADER" verify "$B/http_peer"
	expect_rc 1 "cannot open BPF object 'x2b_http.bpf.o'" "reject: HTTP object that is no BPF ELF" \
		env XDS2BPF_VARIANT=l4 "$E2E_LOADER" verify "$B/http_garbage"
	edit_bundle http_unlisted http_same --drop-file x2b_http.bpf.o
	expect_rc 1 "HTTP object 'x2b_http.bpf.o' is not listed in manifest.files" \
		"reject: HTTP object missing from manifest.files" env XDS2BPF_VARIANT=l4 "$E2E_LOADER" verify "$B/http_unlisted"

	# 3. the tail-call table must match the object
	edit_bundle notail a --drop-tail-call 0
	expect_rc 1 "program 'x2b_rewrite4' is neither an entry program nor in the tail-call table" \
		"reject: tail_calls entry deleted" e2e_loader verify "$B/notail"
	expect_rc 1 "tail-call table" "reject: load with a tail_calls entry deleted" e2e_load "$B/notail" rej
	assert_nothing_left rej "$before"
	edit_bundle badslot a --tail-call-slot 0 3
	expect_rc 1 "slot out of range" "reject: tail call slot beyond the prog array" e2e_loader verify "$B/badslot"

	# 4. manifest integrity: its own digest, strings
	edit_bundle flipped a --flip-bit 1000 --keep-digest
	expect_rc 1 "manifest.pb does not match manifest.sha256" "reject: a bit flipped in manifest.pb" \
		e2e_loader verify "$B/flipped"
	edit_bundle nodigest a
	rm "$B/nodigest/manifest.sha256"
	expect_rc 1 "has no manifest.sha256" "reject: bundle without manifest.sha256" e2e_loader verify "$B/nodigest"
	edit_bundle badutf8 a --replace-bytes "$(hexof "fixture_backend_$PORT_A")" "$(hexof "fixture_backend_${PORT_A%?}")ff"
	expect_rc 1 "invalid cluster name" "reject: invalid UTF-8 in a cluster name" e2e_loader verify "$B/badutf8"
	edit_bundle ctrl a --replace-bytes "$(hexof loader-fixture)" "$(hexof loader)07$(hexof fixture)"
	expect_rc 1 "invalid xds2bpf_version" "reject: control character in xds2bpf_version" e2e_loader verify "$B/ctrl"
	edit_bundle badname a --replace-bytes "$(hexof x2b_rewrite4)" "$(hexof 'x2b rewrite4')"
	expect_rc 1 "invalid program name 'x2b rewrite4'" "reject: program name outside the charset" \
		e2e_loader verify "$B/badname"
	edit_bundle badserves a --replace-bytes "$(hexof 'service lookup')" "$(hexof 'service')c0$(hexof 'lookup')"
	expect_rc 1 "invalid program description" "reject: invalid UTF-8 in 'serves'" e2e_loader verify "$B/badserves"
	assert_nothing_left rej "$before"
}

# --- bundle archives: compile -o bundle.tar loads as it is; anything but plain members is refused
test_tar() {
	local before evil
	before=$(fixture_prog_ids)
	"$E2E_PYTHON" "$HERE/edit-bundle.py" "$B/a" --tar "$B/a.tar" || e2e_fail "tar"
	expect_rc 0 "ok: 2 programs" "verify a bundle archive" e2e_loader verify "$B/a.tar"
	expect_rc 0 "loaded 'tarball'" "load a bundle archive" e2e_load "$B/a.tar" tarball
	connect_is backend-a "the bundle loaded from the archive routes"
	expect_rc 0 "unloaded" "unload 'tarball'" e2e_loader unload --name tarball
	assert_nothing_left tarball "$before"
	for evil in symlink hardlink fifo dotdot absolute extra; do
		"$E2E_PYTHON" "$HERE/edit-bundle.py" "$B/a" --tar "$B/evil-$evil.tar" --evil "$evil" || e2e_fail "tar $evil"
		expect_rc 1 "only regular files and directories|unsafe member name|not listed in the manifest" \
			"reject: archive with a $evil member" e2e_loader verify "$B/evil-$evil.tar"
	done
	cp "$B/a.tar" "$B/flip.tar"
	printf 'X' | dd of="$B/flip.tar" bs=1 seek=$(($(stat -c %s "$B/flip.tar") - 1024 - 600)) conv=notrunc status=none
	expect_rc 1 "sha256 mismatch|checksum mismatch|manifest.sha256|not a valid bundle archive" "reject: archive with a changed byte" \
		e2e_loader verify "$B/flip.tar"
	head -c 5000 "$B/a.tar" >"$B/short.tar"
	expect_rc 1 "not a valid bundle archive" "reject: truncated archive" e2e_loader verify "$B/short.tar"
	assert_nothing_left rej "$before"
}

# --- what the bundle refuses (fail closed), shown by status ---------------------------
test_refused() {
	local before
	before=$(fixture_prog_ids)
	make_bundle "$B/refused" --port "$PORT_A" --refused 4
	expect_rc 0 "loaded 'refused'" "load a bundle that refuses 4 places" e2e_load "$B/refused" refused
	expect_rc 0 "refused +4 place\(s\) of the snapshot need what the kernel cannot run" "status text: refused" \
		e2e_loader status --name refused
	run e2e_loader status --name refused --json
	[ "$RC" = 0 ] || e2e_fail "status: $OUT"
	e2e_expect_eq "4 0" "$(json "'%d %d' % (d[0]['refused_fail_closed'], d[0]['bypassed_filters'])" <<<"$OUT")" \
		"status: refused and bypassed counts"
	expect_rc 0 "unloaded" "unload 'refused'" e2e_loader unload --name refused
	assert_nothing_left refused "$before"
}

# --- the fuzz harness over its seeds and every regression input ---------------------
test_fuzz_replay() {
	expect_rc 0 "ran clean" "fuzz regressions replay" "$ROOT/Tests/fuzz/loader/replay.sh"
}

# --- replace under load -----------------------------------------------------------
start_loop() { # start_loop TAG: connloop in the cgroup, marker/stop files $E2E_TMP/TAG.*
	local tag=$1
	rm -f "$E2E_TMP/$tag".*
	e2e_in_cgroup "$E2E_PYTHON" "$E2E_DIR/connloop.py" "$SVC" --stop-file "$E2E_TMP/$tag.stop" \
		--marker-file "$E2E_TMP/$tag.marker" --summary "$E2E_TMP/$tag.json" --log "$E2E_TMP/$tag.csv" \
		>/dev/null 2>"$E2E_TMP/$tag.err" &
	LOOP_PID=$!
	e2e_track "$LOOP_PID"
}

stop_loop() { # stop_loop TAG: stops the loop, its summary in $LOOP_SUMMARY (not in a subshell: wait)
	local tag=$1
	touch "$E2E_TMP/$tag.stop"
	wait "$LOOP_PID"
	[ -s "$E2E_TMP/$tag.json" ] || e2e_fail "connloop wrote no summary: $(cat "$E2E_TMP/$tag.err")"
	LOOP_SUMMARY=$(cat "$E2E_TMP/$tag.json")
}

test_replace() {
	local name=rep s old_progs new_progs t0 t1 i
	expect_rc 0 "loaded 'rep'" "load A as 'rep'" e2e_load "$B/a" "$name"
	connect_is backend-a "before replace: backend-a"
	old_progs=$(e2e_loader status --name "$name" --json | json "[p['id'] for p in d[0]['programs']]")

	start_loop swap1
	sleep 1.5
	t0=$(date +%s.%N)
	expect_rc 0 "replaced 'rep': 1 links updated" "replace A -> B under load" e2e_loader replace "$B/b" --name "$name"
	t1=$(date +%s.%N)
	touch "$E2E_TMP/swap1.marker"
	sleep 1.5
	stop_loop swap1
	s=$LOOP_SUMMARY
	e2e_log "connloop: $s"
	e2e_log "replace took $(echo "$t1 - $t0" | bc) s"
	e2e_expect_eq 0 "$(json "d['failed']" <<<"$s")" "replace under load: zero failed connects"
	[ "$(json "int(d['rate'] >= 500)" <<<"$s")" = 1 ] || e2e_fail "connect rate below 500/s: $s"
	e2e_log "ok: $(json "d['rate']" <<<"$s") connects/s, $(json "d['total']" <<<"$s") connects"
	e2e_expect_eq "backend-a backend-b" "$(json "sorted(d['idents'])" <<<"$s")" "both backends were reached"
	e2e_expect_eq "backend-b" "$(json "list(d['after_marker'])" <<<"$s")" "every connect after the replace reached backend-b"
	e2e_expect_eq 1 "$(json "d['transitions']" <<<"$s")" "one switch A -> B, never back"
	connect_is backend-b "after replace: backend-b"
	# shellcheck disable=SC2086
	wait_gone prog $old_progs
	e2e_log "ok: the old programs are gone"
	new_progs=$(e2e_loader status --name "$name" --json | json "[p['id'] for p in d[0]['programs']]")
	e2e_expect_eq 1 "$(e2e_loader stats --name "$name" --json | json "int(d['clusters'][0]['name'] == 'fixture_backend_$PORT_B')")" \
		"stats names come from the new manifest"

	# failures during replace roll back and leave no temporary pins
	for point in replace-after-fill replace-mid-swap; do
		expect_rc 1 "injected failure at '$point'" "replace failing at $point" \
			env XDS2BPF_TEST_FAIL=$point "$E2E_LOADER" replace "$B/a" --name "$name"
		connect_is backend-b "after a failed replace ($point) B still serves"
		[ ! -e "$XDS2BPF_BPFFS/$name/staging" ] || e2e_fail "staging pins left: $(ls -R "$XDS2BPF_BPFFS/$name/staging")"
		e2e_expect_eq "$new_progs" "$(e2e_loader status --name "$name" --json | json "[p['id'] for p in d[0]['programs']]")" \
			"program pins unchanged after the failed replace"
	done
	expect_rc 1 "sha256 mismatch" "replace with a tampered bundle is refused" \
		e2e_loader replace "$B/tampered" --name "$name"
	connect_is backend-b "after a refused replace B still serves"

	# many swaps under load: A, C, B, ... never a failed connect
	start_loop swapn
	sleep 0.5
	for i in $(seq 10); do
		case $((i % 3)) in
		0) e2e_loader replace "$B/b" --name "$name" 2>/dev/null ;;
		1) e2e_loader replace "$B/a" --name "$name" 2>/dev/null ;;
		2) e2e_loader replace "$B/c" --name "$name" 2>/dev/null ;;
		esac || e2e_fail "replace $i failed"
		sleep 0.2
	done
	stop_loop swapn
	s=$LOOP_SUMMARY
	e2e_log "connloop: $s"
	e2e_expect_eq 0 "$(json "d['failed']" <<<"$s")" "10 replaces under load: zero failed connects"
	e2e_expect_eq "backend-a backend-b backend-c" "$(json "sorted(d['idents'])" <<<"$s")" "all three backends were reached"

	# a command working on the name (here flock(1) on its state directory) holds it
	# for a moment: the next one waits for it (bounded, XDS2BPF_LOCK_WAIT seconds)
	flock "$XDS2BPF_STATE_DIR/$name" sleep 1 &
	local holder=$!
	sleep 0.2
	expect_rc 1 "is locked: another xds2bpf-loader command .*waited 0 ms" "a held name with XDS2BPF_LOCK_WAIT=0 is refused at once" \
		env XDS2BPF_LOCK_WAIT=0 "$E2E_LOADER" replace "$B/a" --name "$name"
	t0=$(date +%s.%N)
	expect_rc 0 "replaced 'rep'" "replace waits for the name held by another command" e2e_loader replace "$B/a" --name "$name"
	t1=$(date +%s.%N)
	wait "$holder"
	[ "$(echo "$t1 - $t0 > 0.5" | bc)" = 1 ] || e2e_fail "replace did not wait for the lock ($(echo "$t1 - $t0" | bc) s)"
	connect_is backend-a "after the waiting replace: backend-a"

	expect_rc 0 "unloaded" "unload 'rep'" e2e_loader unload --name "$name"
	assert_nothing_left "$name"
}

# --- replace adds and removes attach kinds ----------------------------------------
test_attach_kinds() {
	local name=kinds
	expect_rc 0 "loaded 'kinds'" "load A (connect4 only)" e2e_load "$B/a" "$name"
	connect_is "backend-a peer=127.0.0.1:$PORT_A" "without getpeername4 the peer is the backend" --peer
	expect_rc 0 "1 links updated, 1 attached, 0 detached" "replace with A+getpeername4" \
		e2e_loader replace "$B/apeer" --name "$name"
	connect_is "backend-a peer=$SVC" "getpeername4 attached by replace shows the service" --peer
	e2e_expect_eq "connect4 getpeername4" "$(e2e_loader status --name "$name" --json | json "[a['kind'] for a in d[0]['attach_points']]")" \
		"status lists both attach points"
	expect_rc 0 "1 links updated, 0 attached, 1 detached" "replace with B (connect4 only)" \
		e2e_loader replace "$B/b" --name "$name"
	connect_is "backend-b peer=127.0.0.1:$PORT_B" "getpeername4 detached by replace" --peer
	[ ! -e "$XDS2BPF_BPFFS/$name/links/getpeername4" ] || e2e_fail "getpeername4 link pin left"
	[ ! -e "$XDS2BPF_BPFFS/$name/maps/x2b_rev" ] || e2e_fail "x2b_rev pin left after replace"
	[ ! -e "$XDS2BPF_BPFFS/$name/progs/x2b_peer4" ] || e2e_fail "x2b_peer4 pin left after replace"
	e2e_expect_eq "cgroup_inet4_connect" "$(bpftool cgroup show "$E2E_CGROUP" -j | json "[p['attach_type'] for p in d]")" \
		"only connect4 attached to the cgroup"
	expect_rc 0 "unloaded" "unload 'kinds'" e2e_loader unload --name "$name"
	assert_nothing_left "$name"
}

# --- update: an endpoint-only delta written into the pinned maps in place --------
delta() { # delta OUT BUNDLE ARGS...: an EndpointDelta (make-delta.py)
	local out=$1 bundle=$2
	shift 2
	"$E2E_PYTHON" "$HERE/make-delta.py" "$bundle" "$out" "$@" >/dev/null || e2e_fail "make-delta.py $*"
}

maps_digest() { # maps_digest NAME: sha256 of the contents of the update's maps
	# without what connects change: the round-robin position in x2b_clu rows
	# (bytes 8-11) and the connect count in x2b_ep rows (bytes 24-31)
	local m
	for m in x2b_clu x2b_cluv x2b_ep x2b_lbtab; do
		bpftool map dump pinned "$XDS2BPF_BPFFS/$1/maps/$m" -j |
			"$E2E_PYTHON" -c 'import json, sys
volatile = {"x2b_clu": range(8, 12), "x2b_ep": range(24, 32)}.get(sys.argv[1], ())
rows = json.load(sys.stdin)
for r in rows:
    r.pop("formatted", None)  # the same row decoded through BTF, when bpftool has it
    r["value"] = [("0x00" if i in volatile else b) for i, b in enumerate(r["value"])]
print(json.dumps(rows, sort_keys=True))' "$m"
	done | sha256sum | cut -d' ' -f1
}

summary_field() { # summary_field REGEX: the first group of the update summary in $OUT
	sed -nE "s/.*$1.*/\1/p" <<<"$OUT" | head -1
}

test_update() {
	local name=upd D=$E2E_TMP/deltas s before i frees t1 t100 f
	mkdir -p "$D"
	expect_rc 0 "loaded 'upd'" "load the double-buffered bundle" e2e_load "$B/lb" "$name"
	connect_is backend-a "before update: cluster 0 -> backend-a"
	expect_rc 2 "update needs DELTA" "usage: update without a delta" e2e_loader update --name "$name"
	expect_rc 2 "update needs --name" "usage: update without --name" e2e_loader update "$D/none.pb"
	delta "$D/b.pb" "$B/lb" --set 0=$PORT_B --snapshot upd-b
	expect_rc 1 "no bundle named 'nope'" "update of an unknown name" e2e_loader update --name nope "$D/b.pb"

	# 1. under load: every connect after update returns reaches the new endpoint, none fails
	start_loop upd1
	sleep 1
	expect_rc 0 "updated 'upd': 1 clusters, 1 endpoints, 1 slots written in [0-9]+ us" \
		"update cluster 0 -> backend-b under load" e2e_loader update --name "$name" "$D/b.pb"
	touch "$E2E_TMP/upd1.marker"
	sleep 1
	stop_loop upd1
	s=$LOOP_SUMMARY
	e2e_log "connloop: $s"
	e2e_expect_eq 0 "$(json "d['failed']" <<<"$s")" "update under load: zero failed connects"
	e2e_expect_eq "backend-a backend-b" "$(json "sorted(d['idents'])" <<<"$s")" "both endpoints were reached"
	e2e_expect_eq "backend-b" "$(json "list(d['after_marker'])" <<<"$s")" "every connect after the update reached backend-b"
	e2e_expect_eq 1 "$(json "d['transitions']" <<<"$s")" "one switch a -> b, never back"

	# 2. status: the live snapshot and the agent's versions
	printf '{"cds": "v7", "eds":"v12", "lds": 3}\n' >"$XDS2BPF_STATE_DIR/$name/versions.json"
	run e2e_loader status --name "$name" --json
	e2e_expect_eq "$(printf %s upd-b | sha256sum | cut -d' ' -f1)" "$(json "d[0]['snapshot_sha256']" <<<"$OUT")" \
		"status: the live snapshot is the delta's"
	e2e_expect_eq "v7 v12 3" "$(json "[d[0]['versions'][k] for k in ('cds','eds','lds')]" <<<"$OUT")" \
		"status --json: versions.json"
	e2e_expect_eq "$(printf %s upd-b | sha256sum | cut -d' ' -f1)" "$(e2e_loader stats --name "$name" --json | json "d['snapshot_sha256']")" \
		"stats: the live snapshot"
	e2e_expect_eq "0 1 1 1" "$(e2e_loader update --name "$name" "$D/b.pb" --json 2>/dev/null | json "[d['clusters'] - 1, d['endpoints'], d['slots'], int(d['micros'] > 0)]")" \
		"update --json: the summary as JSON"
	expect_rc 0 "version +eds = v12" "status text shows the versions" e2e_loader status --name "$name"
	grep -q "updated .*in place" <<<"$OUT" || e2e_fail "status text does not show the update: $OUT"

	# 2b. update-stream: one session, several requests (the node agent's co-process)
	delta "$D/s1.pb" "$B/lb" --set 0=$PORT_C --snapshot upd-s1
	delta "$D/s2.pb" "$B/lb" --set 0=$PORT_B --snapshot upd-s2
	delta "$D/sbad.pb" "$B/lb" --set 0=$PORT_C --code-sha256 "$(printf %064d 7)"
	"$E2E_PYTHON" - "$D" "$(printf %s upd-named | sha256sum | cut -d' ' -f1)" >"$D/stream.in" <<'PY'
import sys
d, sha = sys.argv[1], sys.argv[2]
out = sys.stdout.buffer
for i, f in ((1, "s1.pb"), (2, "sbad.pb"), (3, "s2.pb")):
    b = open(f"{d}/{f}", "rb").read()
    out.write(f"delta {i} {len(b)}\n".encode() + b)
out.write(f"snapshot 4 {sha}\n".encode())
PY
	e2e_loader update-stream --name "$name" <"$D/stream.in" >"$D/stream.out" 2>"$D/stream.err"
	e2e_expect_eq 0 "$?" "update-stream: exit 0 at the end of its input"
	e2e_expect_eq "ready:0 live:1 done:1 error:2 live:3 done:3 done:4" \
		"$(json "' '.join(f\"{e['event']}:{e['id']}\" for e in d)" <<<"[$(paste -sd, "$D/stream.out")]")" \
		"update-stream: ready, then live/done per delta, error for the refused one, done for the naming"
	e2e_expect_eq 1 "$(json "[e for e in d if e['event'] == 'error'][0]['status']" <<<"[$(paste -sd, "$D/stream.out")]")" \
		"update-stream: the refused delta's status is update's exit code (1)"
	grep -q "applies to another bundle" "$D/stream.err" || e2e_fail "update-stream: no reason for the refused delta on stderr"
	connect_is backend-b "after update-stream: the last delta's endpoint"
	run e2e_loader status --name "$name" --json
	e2e_expect_eq "$(printf %s upd-named | sha256sum | cut -d' ' -f1)" "$(json "d[0]['snapshot_sha256']" <<<"$OUT")" \
		"update-stream: the snapshot named after the delta is the live snapshot"
	printf 'bogus 1\n' >"$D/bogus.in"
	expect_rc 2 "unknown request" "update-stream: an unknown request ends it (exit 2)" \
		e2e_loader update-stream --name "$name" <"$D/bogus.in"

	# 3. rejected deltas: exit 1, nothing changed
	before=$(maps_digest "$name")
	delta "$D/other.pb" "$B/lb" --set 0=$PORT_C --code-sha256 "$(printf %064d 7)"
	expect_rc 1 "applies to another bundle" "reject: delta for another code_sha256" e2e_loader update --name "$name" "$D/other.pb"
	delta "$D/rec.pb" "$B/lb" --set 0=$PORT_C --bad-record-size
	expect_rc 1 "not a multiple of struct x2b_endpoint" "reject: wrong endpoint record size" e2e_loader update --name "$name" "$D/rec.pb"
	delta "$D/slot.pb" "$B/lb" --set 0=$PORT_C,$PORT_A --bad-slot
	expect_rc 1 "slot 1: endpoint 2 out of range" "reject: slot ep out of range" e2e_loader update --name "$name" "$D/slot.pb"
	delta "$D/unknown.pb" "$B/lb" --set 0=$PORT_C --id-offset 0=5
	expect_rc 1 "unknown cluster 5" "reject: unknown cluster" e2e_loader update --name "$name" "$D/unknown.pb"
	delta "$D/wname.pb" "$B/lb" --set 0=$PORT_C --name 0=fx_cluster_1
	expect_rc 1 "cluster 0 is named 'fx_cluster_1' in the delta and 'fx_cluster_0'" "reject: wrong cluster name" \
		e2e_loader update --name "$name" "$D/wname.pb"
	delta "$D/dup.pb" "$B/lb" --set 0=$PORT_C --dup
	expect_rc 1 "listed twice" "reject: a cluster twice" e2e_loader update --name "$name" "$D/dup.pb"
	delta "$D/fam.pb" "$B/lb" --set 0=$PORT_C --family 5
	expect_rc 1 "family 5" "reject: endpoint family" e2e_loader update --name "$name" "$D/fam.pb"
	delta "$D/load.pb" "$B/lb" --set 0=$PORT_C --bad-load
	expect_rc 1 "last level's cumulative load is 99" "reject: last cumulative load not 100" e2e_loader update --name "$name" "$D/load.pb"
	delta "$D/abi.pb" "$B/lb" --set 0=$PORT_C --abi-version 1
	expect_rc 1 "delta ABI version 1" "reject: delta ABI version" e2e_loader update --name "$name" "$D/abi.pb"
	delta "$D/fmt.pb" "$B/lb" --set 0=$PORT_C --format-version 2
	expect_rc 1 "delta format version 2" "reject: delta format version" e2e_loader update --name "$name" "$D/fmt.pb"
	head -c 100 /dev/urandom >"$D/garbage.pb"
	printf '\xff\xff\xff' >>"$D/garbage.pb"
	expect_rc 1 "not a valid xds2bpf.bundle.v1.EndpointDelta|delta" "reject: garbage" e2e_loader update --name "$name" "$D/garbage.pb"
	mkfifo "$D/fifo.pb"
	expect_rc 1 "not a regular file" "reject: a FIFO as DELTA (no hang)" timeout 20 "$E2E_LOADER" update --name "$name" "$D/fifo.pb"
	expect_rc 1 "No such file" "reject: missing delta" e2e_loader update --name "$name" "$D/missing.pb"
	e2e_expect_eq "$before" "$(maps_digest "$name")" "rejected deltas changed nothing"

	# 4. does not fit: exit 4, nothing written, connects unchanged
	delta "$D/big.pb" "$B/lb" --set "0=$(seq -s, 20001 20040)"
	expect_rc 4 "does not fit: x2b_ep has [0-9]+ endpoints free .*40 needed; a full replace is needed" \
		"a delta that does not fit" e2e_loader update --name "$name" "$D/big.pb"
	e2e_expect_eq "$before" "$(maps_digest "$name")" "the delta that did not fit changed nothing"
	connect_is backend-b "after the refused delta: still backend-b"

	# corrupt kernel state is never written over: exit 4, a reload is needed
	delta "$D/c.pb" "$B/lb" --set 0=$PORT_C --snapshot upd-c
	bpftool map update pinned "$XDS2BPF_BPFFS/$name/maps/x2b_cluv" key 1 0 0 0 value 5 0 0 0 || e2e_fail "bpftool map update"
	expect_rc 4 "x2b_cluv\[1\] is 5 \(0 or 1\); cannot update in place: reload" "a corrupt live-row switch" \
		e2e_loader update --name "$name" "$D/c.pb"
	bpftool map update pinned "$XDS2BPF_BPFFS/$name/maps/x2b_cluv" key 1 0 0 0 value 0 0 0 0 || e2e_fail "bpftool map update"
	bpftool map update pinned "$XDS2BPF_BPFFS/$name/maps/x2b_clu" key 2 0 0 0 value \
		0 0 0 0 1 0 0 0 1 0 0 0 0 0 0 0 100 0 0 0 255 255 0 0 1 0 0 0 0 0 0 0 1 0 0 0 $(printf '0 %.0s' $(seq 60)) ||
		e2e_fail "bpftool map update"
	expect_rc 4 "live row of cluster 1 level 0: endpoints \[65535, \+1\) .* beyond x2b_ep \(32\)" \
		"a live row pointing beyond x2b_ep" e2e_loader update --name "$name" "$D/c.pb"
	bpftool map update pinned "$XDS2BPF_BPFFS/$name/maps/x2b_clu" key 2 0 0 0 value \
		0 0 0 0 1 0 0 0 1 0 0 0 0 0 0 0 100 0 0 0 1 0 0 0 1 0 0 0 1 0 0 0 1 0 0 0 $(printf '0 %.0s' $(seq 60)) ||
		e2e_fail "bpftool map update"
	e2e_expect_eq "$before" "$(maps_digest "$name")" "the corrupt rows restored"

	# 5. a failure before the switches: exit 3, the kernel state that is read is unchanged
	expect_rc 3 "injected failure at 'update-before-switch'" "update failing before the switch" \
		env XDS2BPF_TEST_FAIL=update-before-switch "$E2E_LOADER" update --name "$name" "$D/c.pb"
	for i in 1 2 3; do connect_is backend-b "after the failed update: still backend-b"; done

	# an update that died between its switches and its grace period: the next one waits first
	[ ! -e "$XDS2BPF_STATE_DIR/$name/update.pending" ] || e2e_fail "update.pending left by a finished update"
	touch "$XDS2BPF_STATE_DIR/$name/update.pending"
	expect_rc 0 "updated 'upd'" "update after an interrupted one" e2e_loader update --name "$name" "$D/b.pb"
	[ ! -e "$XDS2BPF_STATE_DIR/$name/update.pending" ] || e2e_fail "update.pending not removed"

	# 6. no levels: connects refused; then two levels
	delta "$D/none.pb" "$B/lb" --set 0=
	expect_rc 0 "1 clusters, 0 endpoints, 0 slots" "update to no endpoints" e2e_loader update --name "$name" "$D/none.pb"
	connect_is "error: EPERM Operation not permitted" "a cluster without endpoints refuses connects"
	delta "$D/ab.pb" "$B/lb" --set "0=$PORT_A/$PORT_B"
	expect_rc 0 "1 clusters, 2 endpoints, 2 slots" "update to two priority levels" e2e_loader update --name "$name" "$D/ab.pb"

	# 7. 200 updates of the same cluster: ranges are reused, the free space stays constant
	frees=""
	for i in $(seq 200); do
		f=$D/b.pb
		[ $((i % 2)) = 1 ] && f=$D/c.pb
		run e2e_loader update --name "$name" "$f"
		[ "$RC" = 0 ] || e2e_fail "update $i: exit $RC: $OUT"
		frees="$frees
$(summary_field 'free: (x2b_ep [0-9]+ of [0-9]+, x2b_lbtab [0-9]+ of [0-9]+)')"
	done
	e2e_expect_eq 1 "$(sort -u <<<"${frees#?}" | wc -l)" "200 updates: the free space stays constant ($(sort -u <<<"${frees#?}"))"
	connect_is backend-b "after 200 updates: the last one (backend-b) serves"
	e2e_expect_eq 207 "$("$E2E_PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["updates"])' "$XDS2BPF_STATE_DIR/$name/update.json")" \
		"update.json counts the updates (3 + 2 through update-stream + 2 + 200)"

	# 8. replace brings the bundle's own snapshot back
	expect_rc 0 "replaced 'upd'" "replace after updates" e2e_loader replace "$B/lb" --name "$name"
	connect_is backend-a "after replace: the bundle's endpoints"
	[ ! -e "$XDS2BPF_STATE_DIR/$name/update.json" ] || e2e_fail "update.json left after replace"
	expect_rc 0 "unloaded" "unload 'upd'" e2e_loader unload --name "$name"
	assert_nothing_left "$name"

	# a bundle whose cluster rows are not double-buffered (no x2b_cluv)
	expect_rc 0 "loaded 'upd1'" "load a bundle without x2b_cluv" e2e_load "$B/a" upd1
	delta "$D/a.pb" "$B/a" --set 0=$PORT_B
	expect_rc 4 "has no map x2b_cluv .*cannot update in place: reload" "update of a bundle without x2b_cluv" \
		e2e_loader update --name upd1 "$D/a.pb"
	connect_is backend-a "the bundle without x2b_cluv still serves"
	expect_rc 0 "unloaded" "unload 'upd1'" e2e_loader unload --name upd1
	assert_nothing_left upd1

	# 9. least request: new endpoint addresses get their x2b_active entry before the switch
	expect_rc 0 "loaded 'updlr'" "load a least-request bundle" e2e_load "$B/lblr" updlr
	e2e_expect_eq 1 "$(bpftool map dump pinned "$XDS2BPF_BPFFS/updlr/maps/x2b_active" -j | json "len(d)")" "x2b_active: the image's one address"
	delta "$D/lr.pb" "$B/lblr" --set "0=$PORT_B,$PORT_C"
	expect_rc 0 "updated 'updlr': 1 clusters, 2 endpoints" "update a least-request cluster" e2e_loader update --name updlr "$D/lr.pb"
	e2e_expect_eq 3 "$(bpftool map dump pinned "$XDS2BPF_BPFFS/updlr/maps/x2b_active" -j | json "len(d)")" "x2b_active: the new addresses added"
	delta "$D/lrfull.pb" "$B/lblr" --set "0=20001,20002,20003"
	expect_rc 0 "x2b_active is full: least request does not count the connections of 2 new" \
		"x2b_active full: a warning, the update applies" e2e_loader update --name updlr "$D/lrfull.pb"
	expect_rc 0 "unloaded" "unload 'updlr'" e2e_loader unload --name updlr
	assert_nothing_left updlr

	# 10. timing: 1 and 100 clusters of a 100-cluster bundle
	expect_rc 0 "loaded 'upd100'" "load a bundle of 100 clusters" e2e_load "$B/lb100" upd100
	delta "$D/one.pb" "$B/lb100" --set 0=$PORT_C
	delta "$D/all.pb" "$B/lb100" --all 100=$PORT_B
	expect_rc 0 "updated 'upd100': 1 clusters" "update 1 of 100 clusters" e2e_loader update --name upd100 "$D/one.pb"
	t1=$(summary_field 'written in ([0-9]+) us')
	connect_is backend-c "cluster 0 updated"
	expect_rc 0 "updated 'upd100': 100 clusters, 100 endpoints, 100 slots" "update 100 clusters" \
		e2e_loader update --name upd100 "$D/all.pb"
	t100=$(summary_field 'written in ([0-9]+) us')
	connect_is backend-b "all clusters updated"
	e2e_log "update timing: 1 cluster $t1 us, 100 clusters $t100 us ($(summary_field '(\(maps.*grace period [0-9]+ us\))'))"
	delta "$D/one-b.pb" "$B/lb100" --set 0=$PORT_B
	delta "$D/all-c.pb" "$B/lb100" --all 100=$PORT_C
	for f in one-b one all-c all one-b one all-c all; do
		run e2e_loader update --name upd100 "$D/$f.pb"
		[ "$RC" = 0 ] || e2e_fail "update $f: $OUT"
		e2e_log "timing $f: $(summary_field '(written in .*grace period [0-9]+ us\))')"
	done
	expect_rc 0 "unloaded" "unload 'upd100'" e2e_loader unload --name upd100
	assert_nothing_left upd100
}

# --- update with bundles and a delta of the compiler (skipped without .build/release/xds2bpf)
snapshot_yaml() { # snapshot_yaml PORT...: the minimal example with these endpoints on 127.0.0.1
	local p
	cat <<-EOF
	static_resources:
	  listeners:
	  - name: web
	    address: {socket_address: {address: 10.96.0.1, port_value: 80}}
	    filter_chains:
	    - filters:
	      - name: envoy.filters.network.tcp_proxy
	        typed_config:
	          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
	          stat_prefix: web
	          cluster: backend
	  clusters:
	  - name: backend
	    type: STATIC
	    load_assignment:
	      cluster_name: backend
	      endpoints:
	      - lb_endpoints:
	EOF
	for p in "$@"; do
		echo "        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $p}}}"
	done
}

test_update_compiled() {
	local xds2bpf=${XDS2BPF:-$ROOT/.build/release/xds2bpf} C=$E2E_TMP/compiled s
	if [ ! -x "$xds2bpf" ]; then
		[ "${CI:-}" = 1 ] && e2e_fail "update_compiled: no compiler at $xds2bpf"
		e2e_log "SKIP update_compiled: no compiler at $xds2bpf (swift build -c release --product xds2bpf)"
		return 0
	fi
	mkdir -p "$C"
	snapshot_yaml "$PORT_A" >"$C/a.yaml"
	snapshot_yaml "$PORT_B" "$PORT_C" >"$C/bc.yaml"
	"$xds2bpf" compile "$C/a.yaml" -o "$C/a" --cache-dir none --quiet || e2e_fail "compile a"
	"$xds2bpf" compile "$C/bc.yaml" -o "$C/bc" --cache-dir none --quiet --base "$C/a" --delta "$C/bc.pb" ||
		e2e_fail "compile bc --base a --delta"
	[ -s "$C/bc.pb" ] || e2e_fail "the compiler wrote no delta"
	expect_rc 0 "loaded 'real'" "load a compiled bundle" e2e_load "$C/a" real
	connect_is backend-a "compiled bundle: backend-a"
	start_loop real1
	sleep 1
	expect_rc 0 "updated 'real': 1 clusters, 2 endpoints" "update with the compiler's delta under load" \
		e2e_loader update --name real "$C/bc.pb"
	touch "$E2E_TMP/real1.marker"
	sleep 1
	stop_loop real1
	s=$LOOP_SUMMARY
	e2e_log "connloop: $s"
	e2e_expect_eq 0 "$(json "d['failed']" <<<"$s")" "compiled delta under load: zero failed connects"
	e2e_expect_eq "backend-b backend-c" "$(json "sorted(d['after_marker'])" <<<"$s")" \
		"every connect after the update reached the new endpoints (both)"
	e2e_expect_eq True "$(e2e_loader status --name real --json | json "d[0]['snapshot_sha256'] != d[0]['bundle_snapshot_sha256']")" \
		"status: the live snapshot is the delta's, not the loaded bundle's"
	expect_rc 0 "unloaded" "unload 'real'" e2e_loader unload --name real
	assert_nothing_left real
}

# --- images: after a load, every map holds exactly its image (filled in batches of 4096
# entries, one syscall each; entry by entry where the kernel has no batch update)
test_images() {
	local xds2bpf=${XDS2BPF:-$ROOT/.build/release/xds2bpf} C=$E2E_TMP/images m checked=0
	if [ ! -x "$xds2bpf" ]; then
		[ "${CI:-}" = 1 ] && e2e_fail "images: no compiler at $xds2bpf"
		e2e_log "SKIP images: no compiler at $xds2bpf (swift build -c release --product xds2bpf)"
		return 0
	fi
	mkdir -p "$C"
	# 1,000 services of 10 endpoints: x2b_ep has 10,000 rows (three batches)
	"$E2E_PYTHON" "$ROOT/scripts/gen-synthetic.py" --services 1000 --endpoints 10 --http-ratio 0.5 \
		--seed 3 --format pb -q -o "$C/mesh.xds.pb" || e2e_fail "gen-synthetic"
	"$xds2bpf" compile "$C/mesh.xds.pb" -o "$C/b" --cache-dir none --quiet 2>"$C/compile.log" || e2e_fail "compile the mesh: $(tail -3 "$C/compile.log")"
	expect_rc 0 "loaded 'imgs'" "load a 1k-service bundle" e2e_load "$C/b" imgs
	for m in "$C"/b/maps/*.bin; do
		m=$(basename "$m" .bin)
		bpftool map show pinned "$XDS2BPF_BPFFS/imgs/maps/$m" -j >"$C/$m.show" &&
			bpftool map dump pinned "$XDS2BPF_BPFFS/imgs/maps/$m" -j >"$C/$m.dump" ||
			e2e_fail "images: bpftool cannot read map $m"
		"$E2E_PYTHON" - "$C/b/maps/$m.bin" "$C/$m.show" "$C/$m.dump" <<-'PY' || e2e_fail "images: map $m differs from its image"
			import json, sys
			image, show, dump = open(sys.argv[1], "rb").read(), json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
			ks, vs = show["bytes_key"], show["bytes_value"]
			want = {image[i:i + ks]: image[i + ks:i + ks + vs] for i in range(0, len(image), ks + vs)}
			def raw(v): return bytes(int(b, 16) for b in v)
			got = {}
			for row in dump:
			    vals = [raw(c["value"]) for c in row["values"]] if "values" in row else [raw(row["value"])]
			    if len(set(vals)) != 1:
			        sys.exit(f"{sys.argv[1]}: key {row['key']}: the CPUs' values differ")
			    got[raw(row["key"])] = vals[0]
			for k, v in want.items():
			    if got.get(k) != v:
			        sys.exit(f"{sys.argv[1]}: key {k.hex()}: {got.get(k, b'').hex()} in the map, {v.hex()} in the image")
			# arrays list every index: those the image leaves out hold zeros
			extra = [k for k, v in got.items() if k not in want and any(v)]
			if extra:
			    sys.exit(f"{sys.argv[1]}: {len(extra)} entries not in the image, e.g. {extra[0].hex()}")
		PY
		checked=$((checked + 1))
	done
	e2e_log "ok: $checked maps hold their images exactly ($(stat -c %s "$C/b/maps/x2b_ep.bin") bytes of endpoint rows)"
	[ "$checked" -ge 10 ] || e2e_fail "images: only $checked maps checked"
	expect_rc 0 "unloaded" "unload 'imgs'" e2e_loader unload --name imgs
	assert_nothing_left imgs
}

# --- metrics: stats in Prometheus' text format, promtool, node_exporter's textfile collector
prom_value() { # prom_value METRIC{LABELS}: the sample's value in $OUT (Prometheus text), or "none"
	# (the sample through the environment: awk -v would undo the format's backslash escapes)
	S="$1" awk 'index($0, ENVIRON["S"] " ") == 1 { print substr($0, length(ENVIRON["S"]) + 2); f = 1 }
		END { if (!f) print "none" }' <<<"$OUT"
}

need_tool() { # need_tool CMD PACKAGE: 0 when present; else fail under CI=1, skip otherwise
	command -v "$1" >/dev/null && return 0
	[ "${CI:-}" = 1 ] && e2e_fail "metrics: needs $1 (Debian package $2; scripts/install-deps.sh)"
	e2e_log "SKIP metrics: needs $1 (Debian package $2; scripts/install-deps.sh)"
	return 1
}

test_metrics() {
	local name=metrics D=$E2E_TMP/metrics lsn l c i got ready stats_pid ne_pid port scrape
	need_tool promtool prometheus || return 0
	need_tool prometheus-node-exporter prometheus-node-exporter || return 0
	mkdir -p "$D/textfile"
	# a listener name with every character the format escapes
	lsn='fixture "web" \ listener'
	make_bundle "$B/metrics" --port "$PORT_A" --lb-clusters 2 --lb-policy 2 --listener-name "$lsn"
	expect_rc 0 "loaded 'metrics'" "load a bundle for the metrics" e2e_load "$B/metrics" "$name"

	# the kernel's run-time statistics on while bpf-stats.py holds its descriptor
	ready=$D/bpf-stats.ready
	"$E2E_PYTHON" "$HERE/bpf-stats.py" "$ready" 2>"$D/bpf-stats.err" &
	stats_pid=$!
	e2e_track "$stats_pid"
	for i in $(seq 100); do
		[ -s "$ready" ] && break
		kill -0 "$stats_pid" 2>/dev/null || e2e_fail "bpf-stats.py: $(cat "$D/bpf-stats.err")"
		sleep 0.05
	done
	[ -s "$ready" ] || e2e_fail "bpf-stats.py did not start"

	for i in $(seq 12); do
		connect_is backend-a "metrics: connect $i"
	done
	got=$(e2e_in_cgroup "$E2E_PYTHON" "$E2E_DIR/client.py" 10.96.0.2:80)
	e2e_expect_eq "error: ENETUNREACH Network is unreachable" "$got" "metrics: an unmatched connect"

	expect_rc 0 "^# TYPE xds2bpf_listener_connects_total counter" "stats --format prometheus" \
		e2e_loader stats --name "$name" --format prometheus
	printf '%s\n' "$OUT" >"$D/stats.prom"
	run promtool check metrics <"$D/stats.prom"
	[ "$RC" = 0 ] || e2e_fail "promtool check metrics: $OUT
$(cat "$D/stats.prom")"
	e2e_log "ok: promtool check metrics accepts the output${OUT:+ ($OUT)}"
	OUT=$(cat "$D/stats.prom")
	l='bundle="metrics"'
	e2e_expect_eq 12 "$(prom_value "xds2bpf_listener_connects_total{$l,listener=\"fixture \\\"web\\\" \\\\ listener\",address=\"10.96.0.1:80\"}")" \
		"prometheus: connects of the listener, its name escaped"
	e2e_expect_eq 12 "$(prom_value "xds2bpf_cluster_connects_total{$l,cluster=\"fx_cluster_0\"}")" "prometheus: connects of the cluster"
	e2e_expect_eq 0 "$(prom_value "xds2bpf_cluster_connects_total{$l,cluster=\"fx_cluster_1\"}")" "prometheus: the other cluster"
	e2e_expect_eq 13 "$(prom_value "xds2bpf_connects_total{$l}")" "prometheus: every connect seen"
	e2e_expect_eq 1 "$(prom_value "xds2bpf_connects_unmatched_total{$l}")" "prometheus: the unmatched connect"
	e2e_expect_eq 0 "$(prom_value "xds2bpf_connects_refused_total{$l}")" "prometheus: nothing refused yet"
	e2e_expect_eq 1 "$(prom_value "xds2bpf_cluster_endpoints{$l,cluster=\"fx_cluster_0\",level=\"0\"}")" "prometheus: endpoints of the live row"
	e2e_expect_eq 12 "$(prom_value "xds2bpf_endpoint_connects_total{$l,cluster=\"fx_cluster_0\",endpoint=\"127.0.0.1:$PORT_A\"}")" \
		"prometheus: connects of the endpoint"
	e2e_expect_eq 0 "$(prom_value "xds2bpf_endpoint_active_connections{$l,endpoint=\"127.0.0.1:$PORT_A\"}")" \
		"prometheus: x2b_active per endpoint address"
	e2e_expect_eq 0 "$(prom_value "xds2bpf_in_place_updates_total{$l}")" "prometheus: no in-place update yet"
	grep -qE "^xds2bpf_bundle_info\{$l,snapshot_sha256=\"[0-9a-f]{64}\",bundle_snapshot_sha256=\"[0-9a-f]{64}\",code_sha256=\"[0-9a-f]{64}\",xds2bpf_version=\"[^\"]+\",variant=\"l4\",cgroup=\"$E2E_CGROUP\"\} 1$" <<<"$OUT" ||
		e2e_fail "prometheus: no xds2bpf_bundle_info line: $(grep bundle_info <<<"$OUT")"
	c=$(prom_value "xds2bpf_program_runs_total{$l,program=\"x2b_connect4\",attach=\"connect4\"}")
	[ "$c" != none ] && [ "$c" -ge 13 ] || e2e_fail "prometheus: x2b_connect4 ran $c times with bpf_stats on (>= 13 expected)"
	grep -qE "^xds2bpf_program_run_seconds_total\{$l,program=\"x2b_connect4\",attach=\"connect4\"\} 0\.[0-9]{9}$" <<<"$OUT" ||
		e2e_fail "prometheus: no run time of x2b_connect4: $(grep run_seconds <<<"$OUT")"
	e2e_log "ok: prometheus: x2b_connect4 ran $c times ($(prom_value "xds2bpf_program_run_seconds_total{$l,program=\"x2b_connect4\",attach=\"connect4\"}") s)"
	kill "$stats_pid" && wait "$stats_pid"

	# an in-place update: two endpoints, then none (connects refused)
	delta "$D/two.pb" "$B/metrics" --set "0=$PORT_A,$PORT_B"
	expect_rc 0 "updated 'metrics'" "update to two endpoints" e2e_loader update --name "$name" "$D/two.pb"
	delta "$D/none.pb" "$B/metrics" --set 0=
	expect_rc 0 "updated 'metrics'" "update to no endpoints" e2e_loader update --name "$name" "$D/none.pb"
	connect_is "error: EPERM Operation not permitted" "metrics: a refused connect"
	run e2e_loader stats --name "$name" --format prometheus
	e2e_expect_eq 2 "$(prom_value "xds2bpf_in_place_updates_total{$l}")" "prometheus: two in-place updates"
	e2e_expect_eq 1 "$(prom_value "xds2bpf_connects_refused_total{$l}")" "prometheus: the refused connect"
	e2e_expect_eq 0 "$(prom_value "xds2bpf_cluster_endpoints{$l,cluster=\"fx_cluster_0\",level=\"0\"}")" \
		"prometheus: a cluster without endpoints"
	grep -qE "^xds2bpf_last_in_place_update_timestamp_seconds\{$l\} [0-9]{10}$" <<<"$OUT" ||
		e2e_fail "prometheus: no time of the last update"
	expect_rc 0 "updated 'metrics'" "update back to two endpoints" e2e_loader update --name "$name" "$D/two.pb"

	# the text and JSON forms still work; contradicting options are usage errors
	expect_rc 0 "fx_cluster_0" "stats text" e2e_loader stats --name "$name"
	# the listener counts every connect that matched it, the refused one too (as x2b_astat.matched does)
	e2e_expect_eq 13 "$(e2e_loader stats --name "$name" --format json | json "d['listeners'][0]['connects']")" "stats --format json"
	# seen (ABI 7: derived by the loader) is every connect: the listener's and the unmatched ones
	e2e_expect_eq True "$(e2e_loader stats --name "$name" --format json |
		json "d['global']['seen'] == d['listeners'][0]['connects'] + d['global']['unmatched'] and d['global']['seen'] > 13")" \
		"stats --format json: seen = listener connects + unmatched"
	expect_rc 2 "contradict" "usage: --json --format prometheus" e2e_loader stats --name "$name" --json --format prometheus
	expect_rc 2 "unknown format" "usage: --format xml" e2e_loader stats --name "$name" --format xml
	expect_rc 2 "not text" "usage: --textfile with --format text" e2e_loader stats --name "$name" --format text --textfile "$D"
	expect_rc 2 "does not take --textfile" "usage: status --textfile" e2e_loader status --textfile "$D"

	# --textfile: written atomically, read by a real node_exporter (textfile collector only)
	expect_rc 0 "" "stats --textfile" e2e_loader stats --name "$name" --textfile "$D/textfile"
	[ -z "$OUT" ] || e2e_fail "--textfile printed: $OUT"
	e2e_expect_eq "xds2bpf_metrics.prom" "$(ls -A "$D/textfile")" "--textfile: one file, no temporary left"
	e2e_expect_eq 644 "$(stat -c %a "$D/textfile/xds2bpf_metrics.prom")" "--textfile: readable by node_exporter"
	promtool check metrics <"$D/textfile/xds2bpf_metrics.prom" || e2e_fail "promtool: the textfile"
	expect_rc 3 "cannot create a file in" "--textfile into a missing directory" \
		e2e_loader stats --name "$name" --textfile "$D/missing"

	port=19100
	nsenter --net="/run/netns/$E2E_NETNS" -- prometheus-node-exporter --web.listen-address="127.0.0.1:$port" \
		--collector.disable-defaults --collector.textfile --collector.textfile.directory="$D/textfile" \
		>"$D/node-exporter.log" 2>&1 &
	ne_pid=$!
	e2e_track "$ne_pid"
	for i in $(seq 100); do
		scrape=$(e2e_in_netns curl -sf "http://127.0.0.1:$port/metrics") && break
		kill -0 "$ne_pid" 2>/dev/null || e2e_fail "node_exporter exited: $(cat "$D/node-exporter.log")"
		sleep 0.1
	done
	[ -n "$scrape" ] || e2e_fail "node_exporter did not answer on 127.0.0.1:$port: $(cat "$D/node-exporter.log")"
	e2e_log "node_exporter (pid $ne_pid) on 127.0.0.1:$port in the netns"
	OUT=$scrape
	e2e_expect_eq 0 "$(prom_value node_textfile_scrape_error)" "node_exporter: the textfile parsed"
	e2e_expect_eq 13 "$(prom_value "xds2bpf_listener_connects_total{address=\"10.96.0.1:80\",$l,listener=\"fixture \\\"web\\\" \\\\ listener\"}")" \
		"node_exporter: connects of the listener"
	e2e_expect_eq 12 "$(prom_value "xds2bpf_cluster_connects_total{$l,cluster=\"fx_cluster_0\"}")" "node_exporter: connects of the cluster"
	e2e_expect_eq 2 "$(prom_value "xds2bpf_cluster_endpoints{$l,cluster=\"fx_cluster_0\",level=\"0\"}")" "node_exporter: endpoints after the update"
	e2e_expect_eq 3 "$(prom_value "xds2bpf_in_place_updates_total{$l}")" "node_exporter: in-place updates"

	# a rewrite while node_exporter reads: new values, never a half-written file
	for i in 1 2 3; do
		got=$(e2e_connect "$SVC")
		[[ "$got" == backend-[ab] ]] || e2e_fail "metrics: connect after the scrape: $got"
	done
	expect_rc 0 "" "stats --textfile again" e2e_loader stats --name "$name" --textfile "$D/textfile"
	OUT=$(e2e_in_netns curl -sf "http://127.0.0.1:$port/metrics")
	e2e_expect_eq 15 "$(prom_value "xds2bpf_cluster_connects_total{$l,cluster=\"fx_cluster_0\"}")" "node_exporter: the rewritten file"
	kill "$ne_pid" && wait "$ne_pid"
	e2e_log "ok: node_exporter $ne_pid stopped"

	expect_rc 0 "unloaded" "unload 'metrics'" e2e_loader unload --name "$name"
	assert_nothing_left "$name"

	# a bundle of the compiler: the real data plane's counters (skipped without the compiler)
	local xds2bpf=${XDS2BPF:-$ROOT/.build/release/xds2bpf}
	if [ ! -x "$xds2bpf" ]; then
		[ "${CI:-}" = 1 ] && e2e_fail "metrics: no compiler at $xds2bpf"
		e2e_log "SKIP metrics of a compiled bundle: no compiler at $xds2bpf"
		return 0
	fi
	# two endpoints (round robin), and an ORIGINAL_DST listener whose connects pass through
	snapshot_yaml "$PORT_A" "$PORT_B" >"$D/web.yaml"
	cat >>"$D/web.yaml" <<-EOF
	  - name: passthrough
	    type: ORIGINAL_DST
	    lb_policy: CLUSTER_PROVIDED
	EOF
	sed -i "s/^  clusters:/  - name: orig\n    address: {socket_address: {address: 10.96.0.2, port_value: 80}}\n    filter_chains:\n    - filters:\n      - name: envoy.filters.network.tcp_proxy\n        typed_config:\n          \"@type\": type.googleapis.com\/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\n          stat_prefix: orig\n          cluster: passthrough\n  clusters:/" "$D/web.yaml"
	"$xds2bpf" compile "$D/web.yaml" -o "$D/web" --cache-dir none --quiet || e2e_fail "compile web: $(cat "$D/web.yaml")"
	expect_rc 0 "loaded 'metrics2'" "load a compiled bundle" e2e_load "$D/web" metrics2
	got=""
	for i in 1 2 3 4; do got+="$(e2e_connect "$SVC") "; done
	e2e_expect_eq "backend-a backend-a backend-b backend-b" "$(tr ' ' '\n' <<<"$got" | grep . | sort | xargs)" \
		"compiled bundle: round robin over both endpoints"
	e2e_expect_eq "error: ENETUNREACH Network is unreachable" "$(e2e_connect 10.96.0.2:80)" "compiled bundle: ORIGINAL_DST passes through"
	run e2e_loader stats --name metrics2 --format prometheus
	[ "$RC" = 0 ] || e2e_fail "stats: $OUT"
	promtool check metrics <<<"$OUT" || e2e_fail "promtool: the compiled bundle's metrics"
	l='bundle="metrics2"'
	e2e_expect_eq 4 "$(prom_value "xds2bpf_listener_connects_total{$l,listener=\"web\",address=\"10.96.0.1:80\"}")" \
		"compiled bundle: connects of listener web"
	e2e_expect_eq 4 "$(prom_value "xds2bpf_cluster_connects_total{$l,cluster=\"backend\"}")" "compiled bundle: connects of cluster backend"
	e2e_expect_eq 2 "$(prom_value "xds2bpf_cluster_endpoints{$l,cluster=\"backend\",level=\"0\"}")" "compiled bundle: two endpoints"
	for p in "$PORT_A" "$PORT_B"; do
		e2e_expect_eq 2 "$(prom_value "xds2bpf_endpoint_connects_total{$l,cluster=\"backend\",endpoint=\"127.0.0.1:$p\"}")" \
			"compiled bundle: connects of endpoint 127.0.0.1:$p"
	done
	e2e_expect_eq 1 "$(prom_value "xds2bpf_connects_passthrough_total{$l}")" "compiled bundle: one connect passed through"
	e2e_expect_eq 1 "$(prom_value "xds2bpf_listener_connects_total{$l,listener=\"orig\",address=\"10.96.0.2:80\"}")" \
		"compiled bundle: connects of listener orig"
	e2e_expect_eq 0 "$(prom_value "xds2bpf_connects_refused_total{$l}")" "compiled bundle: nothing refused"
	e2e_expect_eq 0 "$(prom_value "xds2bpf_connects_no_endpoint_total{$l}")" "compiled bundle: no connect without an endpoint"
	expect_rc 0 "unloaded" "unload 'metrics2'" e2e_loader unload --name metrics2
	assert_nothing_left metrics2
}

e2e_netns_begin
B=$E2E_TMP/bundles
mkdir -p "$B"
make_bundle "$B/a" --port "$PORT_A"
make_bundle "$B/b" --port "$PORT_B"
make_bundle "$B/c" --port "$PORT_C"
make_bundle "$B/apeer" --port "$PORT_A" --peer
make_bundle "$B/badabi" --port "$PORT_A" --abi-version 999
make_bundle "$B/broken" --port "$PORT_A" --broken
make_bundle "$B/http_same" --port "$PORT_A" --http-object same
make_bundle "$B/http_peer" --port "$PORT_A" --http-object peer
make_bundle "$B/http_garbage" --port "$PORT_A" --http-object garbage
make_bundle "$B/lb" --port "$PORT_A" --lb-clusters 2
make_bundle "$B/lb100" --port "$PORT_A" --lb-clusters 100
make_bundle "$B/lblr" --port "$PORT_A" --lb-clusters 2 --lb-policy 2 --active-max 4
cp -r "$B/a" "$B/missing" && rm "$B/missing/maps/x2b_svc.bin"
cp -r "$B/a" "$B/tampered" && printf 'X' | dd of="$B/tampered/x2b.bpf.c" bs=1 seek=10 conv=notrunc status=none
cp -r "$B/a" "$B/truncated" && truncate -s 100 "$B/truncated/x2b.bpf.o"
e2e_backend 127.0.0.1 "$PORT_A" backend-a
e2e_backend 127.0.0.1 "$PORT_B" backend-b
e2e_backend 127.0.0.1 "$PORT_C" backend-c

tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(basic rejects bundle_checks tar refused replace attach_kinds update update_compiled images metrics fuzz_replay)
for t in "${tests[@]}"; do
	e2e_log "=== $t"
	"test_$t"
	e2e_log "PASS $t"
done
e2e_log "all loader tests passed"
