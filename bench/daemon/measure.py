"""What the daemon benchmarks measure with: a process's CPU time, a message
id's UUIDv7 time, a daemon log line's time and percentiles."""
import os
import time

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a process, from /proc (10 ms ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def uuid7_ms(mid):
    """The millisecond time in a UUIDv7 message id (taken by its client)."""
    return int(mid.replace("-", "")[:12], 16)


def log_ms(stamp):
    """A daemon log line's UTC timestamp (2026-01-02T03:04:05.678Z) in ms."""
    t = time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    return t * 1000 + int(stamp[20:23])


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]
