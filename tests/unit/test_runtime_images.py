"""Which images a local node's runtime holds, from `ctr images ls` as containerd 1.6 prints it:
each image by its reference and, once the CRI has seen it, by its ID with the same digest."""

from __future__ import annotations

from chaos.cluster.runtime import images_listed

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CRI = "io.cri-containerd.image=managed"
WEB_ID = "sha256:3817ec643dc0da30e142259d067fe62538437ca39078305015323077dda21a4e"
PAUSE_ID = "sha256:ebc3c72b746248b34c7f6f0af06dcc23552a3b1e1c099ec37230d1fdc50748e3"
LISTING = f"""\
REF                      TYPE       DIGEST          SIZE    PLATFORMS   LABELS
chaosdrill.local/pause:1 {MANIFEST} sha256:b7b1169b 1.9 MiB linux/amd64 {CRI}
chaosdrill.local/web:1   {MANIFEST} sha256:eda92c1a 1.9 MiB linux/amd64 {CRI}
chaosdrill.local/old:1   {MANIFEST} sha256:00000000 1.9 MiB linux/amd64 -
{PAUSE_ID} {MANIFEST} sha256:b7b1169b 1.9 MiB linux/amd64 {CRI}
{WEB_ID} {MANIFEST} sha256:eda92c1a 1.9 MiB linux/amd64 {CRI}
"""


def test_each_reference_is_paired_with_the_id_of_the_same_digest() -> None:
    assert images_listed(LISTING) == {("chaosdrill.local/pause:1", PAUSE_ID),
                                      ("chaosdrill.local/web:1", WEB_ID)}


def test_an_empty_runtime_holds_nothing() -> None:
    assert images_listed("REF TYPE DIGEST SIZE PLATFORMS LABELS\n") == set()
    assert images_listed("") == set()
