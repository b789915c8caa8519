#!/bin/bash
# make soak: the root integration suite SOAK_N times in a row (default 3),
# then once more with both cores kept busy by stress-ng --cpu 2. It exits
# non-zero if any run failed, and says which. Not part of make test.
#
# Run it as root (the suite needs root). stress-ng is started here and
# stopped by its PID (its process group: the parent and its two workers) when
# the run ends, also on failure or interrupt; its own --timeout is a last
# resort should this script be killed outright.
set -u
n=${SOAK_N:-3}
go=${GO:-go}
timeout=${SOAK_TIMEOUT:-45m}
if ! [[ $n =~ ^[0-9]+$ ]]; then
	echo "make soak: SOAK_N=$n is not a count" >&2
	exit 2
fi
command -v stress-ng >/dev/null || { echo "make soak: stress-ng is missing (make deps installs it)" >&2; exit 2; }

failed=()
total=0
run() {
	local label=$1
	total=$((total + 1))
	echo "== make soak: $label: $go test -count=1 -timeout $timeout ./integration"
	local start=$SECONDS
	if "$go" test -count=1 -timeout "$timeout" ./integration; then
		echo "== make soak: $label: ok ($((SECONDS - start)) s)"
	else
		echo "== make soak: $label: FAILED ($((SECONDS - start)) s)"
		failed+=("$label")
	fi
}

for i in $(seq 1 "$n"); do
	run "run $i of $n"
done

# setsid: stress-ng leads a process group of its own, so that stopping it
# reaches its workers too.
setsid stress-ng --cpu 2 --timeout 3h --quiet >/dev/null 2>&1 &
stress=$!
stop_stress() {
	if [ -n "${stress:-}" ]; then
		kill -TERM -- "-$stress" 2>/dev/null
		wait "$stress" 2>/dev/null
		stress=
	fi
}
trap 'stop_stress; exit 130' INT TERM
trap stop_stress EXIT
# The load must be there before the run: wait for both workers.
for _ in $(seq 600); do
	workers=$(pgrep -P "$stress" | wc -l)
	[ "$workers" -ge 2 ] && break
	kill -0 "$stress" 2>/dev/null || break
	sleep 0.1
done
if [ "${workers:-0}" -lt 2 ]; then
	echo "make soak: stress-ng --cpu 2 did not start its 2 workers" >&2
	failed+=("stress-ng did not start")
else
	echo "== make soak: stress-ng --cpu 2 running (pid $stress, workers $(pgrep -P "$stress" | tr '\n' ' '))"
	run "run with both cores busy (stress-ng --cpu 2)"
fi
stop_stress

if [ ${#failed[@]} -gt 0 ]; then
	echo "make soak: ${#failed[@]} of $total runs failed:"
	printf '  - %s\n' "${failed[@]}"
	exit 1
fi
echo "make soak: all $total runs passed"
