#!/usr/bin/env python3
"""Fails on an #include that crosses Tidings' layers the wrong way.

Every C/C++ file outside tests/, bench/ and fuzz/ belongs to one layer (the longest
matching path prefix in LAYERS); each of its project includes must resolve to
a path under one of the prefixes that layer may use, and each third-party
header in EXTERNAL may be included only by the layers named for it. The
table is docs/ARCHITECTURE.md's "Layer rules"; change both together.

Usage: check_layers.py [--root DIR]   (default: the repository this is in)
Exit status 0: every include is allowed; 1: a list of the ones that are not.
"""
import argparse
import os
import re
import sys

COMMON = ["common/"]
PUBLIC_API = ["include/tidings/"]
ENGINE_TYPES = ["engine/types.h"]
HTTP_MESSAGE = ["sync/http/message.h"]

# layer (path prefix) -> what its files may include besides themselves.
LAYERS = {
    "common/": [],
    "crypto/": COMMON,
    "search/": COMMON,  # text processing for the index: pure functions
    "engine/": ["search/", "crypto/"] + COMMON,
    "sync/wire/": ENGINE_TYPES + COMMON,
    "sync/backend.": ENGINE_TYPES + COMMON,
    "sync/http/": COMMON,
    "sync/aws_protocol/": HTTP_MESSAGE + ["crypto/"] + COMMON,
    "sync/aws/": ["sync/aws_protocol/", "sync/http/", "crypto/"] + COMMON,
    "sync/dynamodb/": ["sync/aws/", "sync/aws_protocol/", "sync/http/", "sync/backend.h",
                       "sync/wire/", "crypto/"] + ENGINE_TYPES + COMMON,
    "sync/s3/": ["sync/aws/", "sync/aws_protocol/", "sync/http/", "crypto/"] + COMMON,
    "sync/chime/": ["sync/aws/", "sync/aws_protocol/", "sync/http/", "sync/backend.h",
                    "sync/wire/", "crypto/"] + ENGINE_TYPES + COMMON,
    "sync/e2e/": ["sync/backend.h", "sync/wire/", "engine/sync_log.h", "engine/store_reader.h",
                  "crypto/"] + ENGINE_TYPES + COMMON,
    "sync/core/": ["sync/backend.h", "sync/e2e/", "sync/attachments/", "sync/wire/bytes.h", "sync/wire/operation_codec.h", "engine/", "crypto/"] + COMMON,
    "sync/attachments/": ["sync/s3/", "sync/aws/credentials.h", "engine/attachment_files.h",
                          "crypto/"] + COMMON,
    "api/": ["sync/", "engine/", "crypto/"] + PUBLIC_API + COMMON,
    "include/tidings/": [],  # installed: only each other
    "emulator/": ["sync/aws_protocol/", "crypto/"] + HTTP_MESSAGE + COMMON,
    "cli/": ["daemon/"] + PUBLIC_API + COMMON,  # `tidings daemon` runs daemon/
    "daemon/": PUBLIC_API + COMMON,
    "tests/": None,  # anything
    "bench/": None,
    "fuzz/": None,  # fuzz targets reach into any decoder, as tests do
}

# third-party header (prefix of the <...> name) -> layers that may include it.
EXTERNAL = {
    "sodium.h": ["crypto/"],
    "sodium/": ["crypto/"],
    "rocksdb/": ["engine/"],
    "utf8proc.h": ["search/"],
    "libstemmer.h": ["search/"],
    "curl/": ["sync/http/"],
    "expat.h": ["sync/s3/"],
    "simdjson.h": ["sync/", "emulator/"],
    "boost/": ["sync/chime/", "emulator/"],
    "openssl/": ["sync/chime/", "sync/aws/base64.cc", "emulator/"],
}

SOURCE_SUFFIXES = (".h", ".hpp", ".c", ".cc", ".cpp")
SKIP_DIRS = {".git", "build", "packaging", "docs", "scripts"}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def layer_of(path, table):
    best = None
    for prefix in table:
        if path.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return best


def resolve(root, source, name):
    """The repository path an include names, or None for a system header."""
    for base in (os.path.dirname(source), "", "include"):
        candidate = os.path.normpath(os.path.join(base, name))
        if not candidate.startswith("..") and os.path.isfile(os.path.join(root, candidate)):
            return candidate.replace(os.sep, "/")
    return None


def sources(root):
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        top = rel.split(os.sep)[0]
        dirnames[:] = sorted(d for d in dirnames
                             if not (rel == "." and (d in SKIP_DIRS or d.startswith("build"))))
        if top in SKIP_DIRS:
            continue
        for name in sorted(filenames):
            if name.endswith(SOURCE_SUFFIXES):
                yield os.path.normpath(os.path.join(rel, name)).replace(os.sep, "/")


def violations(root):
    """Yields (file, line, included, reason) for every include not allowed."""
    for path in sources(root):
        layer = layer_of(path, LAYERS)
        if layer is None or LAYERS[layer] is None:
            continue
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
            for number, text in enumerate(f, 1):
                m = INCLUDE.match(text)
                if not m:
                    continue
                name = m.group(2)
                target = resolve(root, path, name)
                if target is None:
                    owners = EXTERNAL.get(layer_of(name, EXTERNAL))
                    if owners is not None and not any(path.startswith(o) for o in owners):
                        yield path, number, name, (
                            f"<{name}> may be included only under {', '.join(owners)}")
                    continue
                allowed = [layer] + LAYERS[layer]
                if any(target.startswith(prefix) for prefix in allowed):
                    continue
                may = sorted(LAYERS[layer])
                yield path, number, target, f"{layer} may include only {', '.join(may)}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--root", default=here)
    args = parser.parse_args()
    failed = [f"{path}:{line}: includes {target}: {reason}"
              for path, line, target, reason in violations(args.root)]
    if failed:
        print("\n".join(failed))
        print(f"{len(failed)} include(s) cross a layer the wrong way "
              "(rules: scripts/check_layers.py, docs/ARCHITECTURE.md)")
        return 1
    print("layers hold")
    return 0

if __name__ == "__main__":
    sys.exit(main())
