"""A PEP 517 build backend in the standard library alone, so that
`pip install ./python` works offline, with nothing to fetch: a virtualenv
of Debian's python3 has pip and setuptools but not `wheel`, and pip's build
isolation would download setuptools from PyPI. The package is pure Python:
a wheel is a zip of its files and three metadata files."""
import base64
import hashlib
import os
import tarfile
import zipfile

NAME = "stockade"
VERSION = "0.1.0"
SUMMARY = "Run untrusted Python in a stockade jail: one-shot, warm pools and sessions"
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIST_INFO = f"{NAME}-{VERSION}.dist-info"
METADATA = (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\nSummary: {SUMMARY}\n"
            "License: Apache-2.0\nRequires-Python: >=3.9\n")
WHEEL = "Wheel-Version: 1.0\nGenerator: stockade_backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _sources():
    pkg = os.path.join(HERE, NAME)
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py"):
            yield f"{NAME}/{name}", os.path.join(pkg, name)


def _digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    d = os.path.join(metadata_directory, DIST_INFO)
    os.makedirs(d, exist_ok=True)
    for name, text in (("METADATA", METADATA), ("WHEEL", WHEEL)):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    return DIST_INFO


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    filename = f"{NAME}-{VERSION}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as z:
        def add(arcname, data):
            z.writestr(arcname, data)
            record.append(f"{arcname},{_digest(data)},{len(data)}")
        for arcname, path in _sources():
            with open(path, "rb") as f:
                add(arcname, f.read())
        add(f"{DIST_INFO}/METADATA", METADATA.encode())
        add(f"{DIST_INFO}/WHEEL", WHEEL.encode())
        add(f"{DIST_INFO}/top_level.txt", f"{NAME}\n".encode())
        record.append(f"{DIST_INFO}/RECORD,,")
        z.writestr(f"{DIST_INFO}/RECORD", "\n".join(record) + "\n")
    return filename


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    # A .pth file naming this source tree.
    filename = f"{NAME}-{VERSION}-0.editable-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as z:
        for arcname, data in ((f"__editable__.{NAME}.pth", (HERE + "\n").encode()),
                              (f"{DIST_INFO}/METADATA", METADATA.encode()), (f"{DIST_INFO}/WHEEL", WHEEL.encode())):
            z.writestr(arcname, data)
            record.append(f"{arcname},{_digest(data)},{len(data)}")
        record.append(f"{DIST_INFO}/RECORD,,")
        z.writestr(f"{DIST_INFO}/RECORD", "\n".join(record) + "\n")
    return filename


get_requires_for_build_editable = get_requires_for_build_wheel
prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_sdist(sdist_directory, config_settings=None):
    base = f"{NAME}-{VERSION}"
    filename = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as t:
        for rel in ("pyproject.toml", "_build/stockade_backend.py"):
            t.add(os.path.join(HERE, rel), f"{base}/{rel}")
        for arcname, path in _sources():
            t.add(path, f"{base}/{arcname}")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        data = METADATA.encode()
        info.size = len(data)
        import io
        t.addfile(info, io.BytesIO(data))
    return filename
