#!/usr/bin/env python3
"""mk-big-image.py ROOTFS.tar OUT.tar NAME:TAG [LAYERS] [MB_PER_LAYER] [random|binaries]

Writes a docker-archive (`docker load` / `pier load`) of an image whose bottom layer
is ROOTFS.tar (the busybox root) and which has LAYERS (default 4) more layers of
MB_PER_LAYER (default 25) MiB each, one file per layer: the shape of the peers'
baseline image (busybox + 4 x 25 MB COPY layers). The data is random (default, as in
the baseline: does not compress) or the machine's own programs and libraries
(/usr/bin, /usr/lib: compresses about 2.5:1, like real layers). Both engines load the
same bytes, so they hold the same image ID.
"""

import hashlib
import io
import json
import os
import sys
import tarfile

rootfs, out, name = sys.argv[1:4]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 4
mb = int(sys.argv[5]) if len(sys.argv) > 5 else 25
kind = sys.argv[6] if len(sys.argv) > 6 else "random"


def binaries():
    """Endless bytes of the files under /usr/bin and /usr/lib, in a fixed order."""
    while True:
        for top in ("/usr/bin", "/usr/lib"):
            for d, dirs, files in os.walk(top):
                dirs.sort()
                for f in sorted(files):
                    p = os.path.join(d, f)
                    if os.path.isfile(p) and not os.path.islink(p):
                        try:
                            with open(p, "rb") as fh:
                                yield fh.read()
                        except OSError:
                            pass


source = binaries()


def data_of(n):
    if kind == "random":
        return os.urandom(n)
    out = bytearray()
    while len(out) < n:
        out += next(source)
    return bytes(out[:n])



def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


tmp = out + ".d"
os.makedirs(tmp, exist_ok=True)
layers = [rootfs]
for i in range(1, n + 1):
    path = os.path.join(tmp, f"layer{i}.tar")
    data = data_of(mb << 20)
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as t:
        info = tarfile.TarInfo(f"r{i}.bin")
        info.size = len(data)
        info.mode = 0o644
        info.mtime = 1_700_000_000
        t.addfile(info, io.BytesIO(data))
    layers.append(path)

diff_ids = ["sha256:" + sha256_file(p) for p in layers]
config = {
    "architecture": "amd64",
    "os": "linux",
    "created": "2026-01-01T00:00:00Z",
    "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
    "rootfs": {"type": "layers", "diff_ids": diff_ids},
    "history": [{"created": "2026-01-01T00:00:00Z", "created_by": f"layer {i}"}
                for i in range(len(layers))],
}
config_bytes = json.dumps(config, separators=(",", ":")).encode()
config_hex = hashlib.sha256(config_bytes).hexdigest()

with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as t:
    def add_bytes(arcname, data):
        info = tarfile.TarInfo(arcname)
        info.size = len(data)
        info.mode = 0o644
        t.addfile(info, io.BytesIO(data))

    add_bytes(f"{config_hex}.json", config_bytes)
    paths = []
    for d, p in zip(diff_ids, layers):
        arc = f"{d[7:]}/layer.tar"
        t.add(p, arcname=arc)
        paths.append(arc)
    add_bytes("manifest.json", json.dumps(
        [{"Config": f"{config_hex}.json", "RepoTags": [name], "Layers": paths}]).encode())

for p in layers[1:]:
    os.remove(p)
os.rmdir(tmp)
print("sha256:" + config_hex)
