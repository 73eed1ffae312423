#!/usr/bin/env python3
"""compare.py PIER.tar DOCKER.tar [--skip key,...]

Compares two docker-archive tarballs (`save` output) of one image each:
the image config fields a Dockerfile sets, the history entries the build
added, and the flattened file tree (path, type, mode, owner, size, content
digest, link target; mtimes are ignored since both sides stamp build time).
Prints one line per difference and exits 1 when there is any.
"""
import hashlib
import json
import sys
import tarfile

CONFIG_KEYS = [
    "Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes",
    "Labels", "Healthcheck", "StopSignal", "OnBuild", "Shell", "ArgsEscaped",
]


def norm_empty(v):
    # null, {} and [] mean the same thing to a container; Docker writes some
    # as null and omits others.
    return None if v in (None, {}, [], "") else v


def load(path):
    with tarfile.open(path) as t:
        manifest = json.load(t.extractfile("manifest.json"))
        assert len(manifest) == 1, f"{path}: expected one image"
        m = manifest[0]
        config = json.load(t.extractfile(m["Config"]))
        tree = {}
        for layer in m["Layers"]:
            apply_layer(t.extractfile(layer), tree)
    return config, tree


def apply_layer(fobj, tree):
    with tarfile.open(fileobj=fobj, mode="r|*") as lt:
        for e in lt:
            name = e.name.lstrip("./").rstrip("/")
            if not name:
                continue
            d, _, base = name.rpartition("/")
            if base == ".wh..wh..opq":
                prefix = d + "/"
                for k in [k for k in tree if k.startswith(prefix)]:
                    del tree[k]
                continue
            if base.startswith(".wh."):
                gone = (d + "/" if d else "") + base[4:]
                for k in [k for k in tree if k == gone or k.startswith(gone + "/")]:
                    del tree[k]
                continue
            if e.isdir() and name in tree and tree[name][0] != "dir":
                pass
            if not e.isdir():
                # A file replacing a directory removes what was below it.
                for k in [k for k in tree if k.startswith(name + "/")]:
                    del tree[k]
            kind = ("dir" if e.isdir() else "file" if e.isreg() else "symlink" if e.issym()
                    else "hardlink" if e.islnk() else "other")
            digest = ""
            size = 0
            if e.isreg():
                data = lt.extractfile(e).read()
                digest = hashlib.sha256(data).hexdigest()[:16]
                size = len(data)
            link = e.linkname if (e.issym() or e.islnk()) else ""
            if e.islnk():
                # Compare hardlinks by what they point at.
                src = tree.get(e.linkname.lstrip("./"))
                if src:
                    kind, size, digest = "file", src[4], src[5]
                link = ""
            tree[name] = (kind, oct(e.mode & 0o7777), e.uid, e.gid, size, digest, link)


def strip_base(h):
    # Entries of the imported base image (no created_by) are not the build's.
    i = 0
    while i < len(h) and not h[i].get("created_by"):
        i += 1
    return h[i:]


def main():
    args = sys.argv[1:]
    skip = set()
    if "--skip" in args:
        i = args.index("--skip")
        skip = set(filter(None, args[i + 1].split(",")))
        del args[i:i + 2]
    pier_cfg, pier_tree = load(args[0])
    dock_cfg, dock_tree = load(args[1])
    diffs = []
    pc, dc = pier_cfg.get("config") or {}, dock_cfg.get("config") or {}
    for k in CONFIG_KEYS:
        if k in skip:
            continue
        a, b = norm_empty(pc.get(k)), norm_empty(dc.get(k))
        if a != b:
            diffs.append(f"config.{k}: pier={json.dumps(a)} docker={json.dumps(b)}")
    for k in ("architecture", "os"):
        if pier_cfg.get(k) != dock_cfg.get(k):
            diffs.append(f"{k}: pier={pier_cfg.get(k)} docker={dock_cfg.get(k)}")
    if "history" not in skip:
        ph = strip_base(pier_cfg.get("history") or [])
        dh = strip_base(dock_cfg.get("history") or [])
        if len(ph) != len(dh):
            diffs.append(f"history: pier has {len(ph)} entries, docker {len(dh)}")
        for i, (a, b) in enumerate(zip(ph, dh)):
            for f in ("created_by", "empty_layer", "comment"):
                if f == "comment" and "history.comment" in skip:
                    continue
                if a.get(f) != b.get(f):
                    diffs.append(f"history[{i}].{f}: pier={json.dumps(a.get(f))} "
                                 f"docker={json.dumps(b.get(f))}")
        if "layers" not in skip:
            pl = sum(1 for h in ph if not h.get("empty_layer"))
            dl = sum(1 for h in dh if not h.get("empty_layer"))
            if pl != dl:
                diffs.append(f"layers: pier added {pl}, docker {dl}")
    if "tree" not in skip:
        for p in sorted(set(pier_tree) | set(dock_tree)):
            a, b = pier_tree.get(p), dock_tree.get(p)
            if a == b:
                continue
            if a and b and a[0] == b[0] == "dir" and "tree.dirmeta" in skip:
                continue
            diffs.append(f"tree /{p}: pier={a} docker={b}")
    for d in diffs:
        print("  " + d)
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
