#!/bin/sh
# Runs a command under /usr/bin/time -v and samples, every 0.2 s, the
# summed resident memory of the command and all its descendants (agents
# included), which /usr/bin/time does not give: its "Maximum resident set
# size" is that of the largest single process.
#
# usage: examples/measure.sh LOG COMMAND [ARG...]
#   LOG gets /usr/bin/time's report and a last line
#   "peak tree RSS: N kB (M processes)".
set -eu
log=$1
shift
/usr/bin/time -v -o "$log" "$@" &
top=$!
peak=0
peak_n=0
# Sum RSS over the process tree rooted at $top.
tree_rss() {
    ps -eo pid=,ppid=,rss= | awk -v root="$1" '
        { parent[$1] = $2; rss[$1] = $3 }
        END {
            sum = 0; n = 0
            for (p in parent) {
                q = p
                while (q != "" && q != root && q != 0 && q != 1) q = parent[q]
                if (q == root) { sum += rss[p]; n++ }
            }
            print sum, n
        }'
}
while kill -0 "$top" 2>/dev/null; do
    set -- $(tree_rss "$top")
    if [ "$1" -gt "$peak" ]; then
        peak=$1
        peak_n=$2
    fi
    sleep 0.2
done
rc=0
wait "$top" || rc=$?
echo "peak tree RSS: $peak kB ($peak_n processes)" >> "$log"
exit $rc
