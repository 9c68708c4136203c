"""Reads a running process's memory the way an auditor does: every readable
mapping of /proc/PID/maps through /proc/PID/mem (root, or CAP_SYS_PTRACE: the
daemon is not dumpable, so its own user cannot). Finds where byte strings
occur, by mapping, with what precedes them."""
import re


def mappings(pid):
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            perms = parts[1]
            name = parts[5].strip() if len(parts) > 5 else ""
            if "r" not in perms or name in ("[vvar]", "[vsyscall]"):
                continue
            out.append((lo, hi, perms, name))
    return out


def find(pid, needles, context=120):
    """{needle: [(address, mapping name, the `context` bytes before it), ...]}
    over every readable mapping. The bytes before are taken from the same
    read as the hit: a live buffer may be rewritten a moment later."""
    hits = {n: [] for n in needles}
    pattern = re.compile(b"|".join(re.escape(n) for n in needles))
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for lo, hi, _, name in mappings(pid):
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError:
                continue  # e.g. a guard page of sodium_malloc
            for m in pattern.finditer(data):
                before = data[max(0, m.start() - context):m.start()]
                hits[m.group(0)].append((lo + m.start(), name or "[anon]", before))
    return hits
