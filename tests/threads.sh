# Sourced by the shell tests. threads_max COMMAND...: run COMMAND (output
# discarded) and print the most threads its process ran at once, polled
# every 2 ms from /proc with builtins only (a sleeping read on a fifo that
# nobody writes). Needs $T, a scratch directory.
mkfifo "$T/never"
exec 9<>"$T/never"
threads_max() {
    "$@" 9<&- >/dev/null 2>&1 &
    local pid=$! max=0 k v
    while kill -0 "$pid" 2>/dev/null; do
        while read -r k v; do
            if [ "$k" = Threads: ]; then
                [ "$v" -gt "$max" ] && max=$v
                break
            fi
        done 2>/dev/null <"/proc/$pid/status"
        read -r -t 0.002 -u 9
    done
    wait "$pid" || echo "threads_max: $1 exited $?" >&2
    echo "$max"
}
