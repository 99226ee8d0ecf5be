#!/usr/bin/python3
# hostile-memscan.py PID NEEDLE...: how many times each needle occurs in
# the resident pages of process PID (root only: reads /proc/PID/mem).
# Prints the counts, space-separated, in the needles' order. Only pages
# present in memory are read (/proc/PID/pagemap), so a runtime's gigabytes
# of reserved address space cost nothing.
import struct
import sys

PAGE = 4096


def main():
    pid = int(sys.argv[1])
    needles = [needle.encode("latin1") for needle in sys.argv[2:]]
    counts = [0] * len(needles)
    regions = []
    with open("/proc/%d/maps" % pid) as maps:
        for line in maps:
            parts = line.split()
            low, high = (int(x, 16) for x in parts[0].split("-"))
            name = parts[5] if len(parts) > 5 else ""
            if "r" in parts[1] and name not in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
                regions.append((low, high))
    with open("/proc/%d/pagemap" % pid, "rb", 0) as pagemap, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for low, high in regions:
            pagemap.seek(low // PAGE * 8)
            entries = pagemap.read((high - low) // PAGE * 8)
            present = [bool(entry >> 63) for (entry,) in struct.iter_unpack("<Q", entries)]
            i = 0
            while i < len(present):
                if not present[i]:
                    i += 1
                    continue
                j = i
                while j < len(present) and present[j]:
                    j += 1
                try:
                    mem.seek(low + i * PAGE)
                    data = mem.read((j - i) * PAGE)
                except OSError:
                    data = b""
                for k, needle in enumerate(needles):
                    counts[k] += data.count(needle)
                i = j
    print(" ".join(str(count) for count in counts))


if __name__ == "__main__":
    main()
