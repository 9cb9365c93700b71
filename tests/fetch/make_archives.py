#!/usr/bin/python3
"""make_archives.py DIR: the archives the extraction tests serve, good and hostile."""
import io
import os
import struct
import sys
import tarfile
import zipfile

out = sys.argv[1]


def tar(name, entries, mode="w"):
    """entries: (TarInfo fields..., data) tuples built by the helpers below."""
    with tarfile.open(os.path.join(out, name), mode, format=tarfile.GNU_FORMAT) as t:
        for info, data in entries:
            t.addfile(info, io.BytesIO(data) if data is not None else None)


def f(name, data=b"hello\n"):
    i = tarfile.TarInfo(name)
    i.size = len(data)
    i.mode = 0o644
    return i, data


def d(name):
    i = tarfile.TarInfo(name)
    i.type = tarfile.DIRTYPE
    i.mode = 0o755
    return i, None


def sym(name, target):
    i = tarfile.TarInfo(name)
    i.type = tarfile.SYMTYPE
    i.linkname = target
    return i, None


def hard(name, target):
    i = tarfile.TarInfo(name)
    i.type = tarfile.LNKTYPE
    i.linkname = target
    return i, None


def special(name, kind):
    i = tarfile.TarInfo(name)
    i.type = kind
    i.devmajor, i.devminor = 1, 3
    return i, None


tar("good.tar.gz", [d("data"), f("data/a.txt", b"alpha\n"), d("data/sub"),
                    f("data/sub/b.txt", b"beta\n"), sym("data/link", "sub/b.txt"),
                    sym("data/sub/up", "../a.txt"), hard("data/hard", "data/a.txt")], "w:gz")
with zipfile.ZipFile(os.path.join(out, "good.zip"), "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("z/a.txt", "alpha\n")
    z.writestr("z/b/c.txt", "gamma\n")
tar("dotdot.tar", [f("ok.txt"), f("../evil_dotdot.txt")])
tar("absolute.tar", [f("ok.txt"), f("/tmp/mpsl_fetch_test_evil_abs.txt")])
tar("symlink_abs.tar", [sym("evil", "/etc")])
tar("symlink_escape.tar", [d("a"), sym("a/evil", "../../outside")])
tar("symlink_name_dotdot.tar", [d("sub"), sym("l", "sub/../..")])
tar("hardlink_escape.tar", [hard("h", "../../etc/passwd")])
tar("device.tar", [f("ok.txt"), special("null", tarfile.CHRTYPE)])
tar("fifo.tar", [special("pipe", tarfile.FIFOTYPE)])
tar("bomb.tar.gz", [f("zeros.bin", b"\0" * (20 * 1000 * 1000))], "w:gz")
tar("two_halves.tar.gz", [f("z1.bin", b"\0" * 3000000), f("z2.bin", b"\0" * 3000000)], "w:gz")
with zipfile.ZipFile(os.path.join(out, "bomb.zip"), "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("zeros.bin", b"\0" * (20 * 1000 * 1000))
tar("many.tar", [f("f%03d.txt" % i, b"") for i in range(300)])

# A zip bomb that lies: both headers claim 1000 bytes, the deflate stream holds 20 MB. Only
# counting while extracting catches it.
liar = os.path.join(out, "liar.zip")
with zipfile.ZipFile(liar, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("zeros.bin", b"\0" * (20 * 1000 * 1000))
with open(liar, "rb") as fh:
    b = bytearray(fh.read())
struct.pack_into("<I", b, 22, 1000)                      # local header: uncompressed size
struct.pack_into("<I", b, b.rfind(b"PK\x01\x02") + 24, 1000)  # central directory: same
with open(liar, "wb") as fh:
    fh.write(b)
