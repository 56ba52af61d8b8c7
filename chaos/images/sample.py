"""Builds the pause and sample-app images as Docker-format archives from Debian's static busybox,
with no registry and no Docker engine; the archives load into containerd or kind as they are."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from chaos.errors import SetupError
from chaos.images.archive import add_entry, config_bytes, packed
from chaos.resources import cache_dir

BUSYBOX = Path("/bin/busybox")
APP_USER = 65534
APP_PORT = 8080
APPLETS = ("sh", "rm", "ls", "cat", "touch", "sleep", "httpd", "wget", "hostname", "kill",
           "timeout")
INDEX_HTML = (
    "<!doctype html><title>chaos-drill web</title>"
    "<h1>chaos-drill web</h1><p>Served by busybox httpd in a pod that may die at any time.</p>\n"
)
WORK_ROUNDS = 5000
WORK_CGI = f"""#!/bin/sh
# /cgi-bin/work: burns a few milliseconds of CPU per request, so load shows up as utilization
i=0
while [ $i -lt {WORK_ROUNDS} ]; do i=$((i + 1)); done
printf 'Content-Type: text/plain\\r\\n\\r\\nworked %s rounds on %s\\n' "$i" "$(hostname)"
"""
WHOAMI_CGI = """#!/bin/sh
# /cgi-bin/whoami: the pod's name, what the api tier answers
printf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' "$(hostname)"
"""
API_TIMEOUT_SECONDS = 2
API_CGI = f"""#!/bin/sh
# /cgi-bin/api: calls the api tier by name ($API_URL, set on web's Deployment); 502 when that
# fails, so an api outage shows in web's availability. busybox httpd passes a status line the
# script prints as it is. wget's own -T crashes the static busybox: timeout bounds the call.
answer() {{ printf 'HTTP/1.1 %s\\r\\nContent-Type: text/plain\\r\\n\\r\\n%s\\n' "$1" "$2"; }}
if [ -z "$API_URL" ]; then answer '500 Internal Server Error' 'API_URL is not set'; exit 0; fi
if reply=$(timeout {API_TIMEOUT_SECONDS} wget -q -O - "$API_URL" 2>&1); then
  answer '200 OK' "$(hostname) called $API_URL: $reply"
else
  answer '502 Bad Gateway' \\
    "$(hostname) called $API_URL: failed (${{reply:-no answer in {API_TIMEOUT_SECONDS} s}})"
fi
"""


@dataclass(frozen=True)
class Image:
    """One image: its reference and how its container starts."""

    reference: str
    entrypoint: tuple[str, ...]
    user: str
    app_files: bool


PAUSE = Image("chaosdrill.local/pause:1", ("/bin/busybox", "sleep", "2147483647"), "65535", False)
WEB = Image(
    "chaosdrill.local/web:1",
    ("/bin/busybox", "httpd", "-f", "-v", "-p", str(APP_PORT), "-h", "/www"),
    str(APP_USER),
    True,
)
ALL = (PAUSE, WEB)


def layer(image: Image, busybox: bytes) -> bytes:
    """The image's only layer, byte-for-byte the same on every build."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        add_entry(tar, "bin")
        add_entry(tar, "bin/busybox", busybox)
        add_entry(tar, "tmp", mode=0o1777)
        if image.app_files:
            for applet in APPLETS:
                add_entry(tar, f"bin/{applet}", link="busybox")
            add_entry(tar, "www", mode=0o755, uid=APP_USER)
            add_entry(tar, "www/index.html", INDEX_HTML.encode(), mode=0o644, uid=APP_USER)
            add_entry(tar, "www/healthz", b"ok\n", mode=0o644, uid=APP_USER)
            add_entry(tar, "www/cgi-bin", mode=0o755)
            add_entry(tar, "www/cgi-bin/work", WORK_CGI.encode(), mode=0o755)
            add_entry(tar, "www/cgi-bin/whoami", WHOAMI_CGI.encode(), mode=0o755)
            add_entry(tar, "www/cgi-bin/api", API_CGI.encode(), mode=0o755)
    return buffer.getvalue()


def image_config(image: Image, diff_id: str) -> bytes:
    return config_bytes({
        "Entrypoint": list(image.entrypoint), "User": image.user, "WorkingDir": "/",
        "ExposedPorts": {f"{APP_PORT}/tcp": {}} if image.app_files else {},
    }, diff_id)


def archive(image: Image, busybox: bytes) -> bytes:
    """A `docker save` style archive holding IMAGE."""
    layer_bytes = layer(image, busybox)
    diff_id = f"sha256:{hashlib.sha256(layer_bytes).hexdigest()}"
    return packed(image.reference, layer_bytes, image_config(image, diff_id))


def build_archives(directory: Path, busybox: Path = BUSYBOX) -> list[Path]:
    """Writes one archive per image into DIRECTORY and returns their paths."""
    if not busybox.exists():
        raise SetupError(
            f"{busybox} not found: run 'make setup' (installs Debian's busybox-static)"
        )
    data = busybox.read_bytes()
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for image in ALL:
        path = directory / (image.reference.split("/")[-1].replace(":", "-") + ".tar")
        content = archive(image, data)
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
        paths.append(path)
    return paths


def archive_dir() -> Path:
    """Where image archives are written: the build cache, outside the repository."""

    return cache_dir() / "images"
