"""The third-party files the GraphiQL page loads, pinned.

GraphiQL must work with no internet access, so the gateway serves every file
itself. They are not committed (about 4 MB of minified code): ``python -m
gateway.graphiql.install`` (run by ``scripts/setup``) fetches the exact npm
packages below with ``npm pack``, checks each tarball's sha512 against this
list, and writes the files into ``static-files/vendor/``. Each file's sha384 is
checked there too and is the ``integrity`` the page gives the browser, so a
changed file is refused twice: by the installer and by the browser.

These are the versions and hashes Strawberry's own GraphiQL page pins (it loads
them from a CDN); to upgrade, change a version here and its hashes (``npm view
NAME@VERSION dist.integrity``; ``openssl dgst -sha384 -binary FILE | base64``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["ASSETS", "PACKAGES", "STATIC_DIR", "Asset", "NpmPackage", "missing_assets"]

STATIC_DIR = Path(__file__).resolve().parent / "static-files"


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    integrity: str  # the tarball's sha512, as npm's lock files write it

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Asset:
    package: NpmPackage
    path: str  # inside the package
    integrity: str  # sha384 of the file, for Subresource Integrity
    kind: Literal["script", "style"]

    @property
    def served_path(self) -> str:
        """Where it lives below ``static-files/`` (and is served below ``/graphiql/``);
        the version in the path lets browsers cache it for good."""
        return f"vendor/{self.package.spec}/{Path(self.path).name}"


REACT = NpmPackage(
    "react", "18.2.0", "sha512-/3IjMdb2L9QbBdWiW5e3P2/npwMBaU9mHCSCUzNln0ZCYbcfTsGbTJrU/kGemdH2IWmB2ioZ+zkxtmq6g09fGQ=="
)
REACT_DOM = NpmPackage(
    "react-dom",
    "18.2.0",
    "sha512-6IMTriUmvsjHUjNtEDudZfuDQUoWXVxKHhlEGSk81n4YFS+r/Kl99wXiwlVXtPBtJenozv2P+hxDsw9eA7Xo6g==",
)
GRAPHIQL = NpmPackage(
    "graphiql",
    "3.8.3",
    "sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw==",
)
EXPLORER = NpmPackage(
    "@graphiql/plugin-explorer",
    "1.0.2",
    "sha512-9j+kg2UjtLZD5EBmGjeWHkoVVxtbShYg2DzbUVebibnZYZM/iMBEF4vaccXJIAm5KaomIPLx0aoNs4LbODyc3Q==",
)
PACKAGES = (REACT, REACT_DOM, GRAPHIQL, EXPLORER)

# In the order the page loads them: each script needs the globals of those
# before it (React, ReactDOM, GraphiQL, GraphiQLPluginExplorer). GraphiQL's
# bundle includes the graphql-ws client and its style sheet embeds its fonts.
ASSETS = (
    Asset(
        REACT,
        "umd/react.production.min.js",
        "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
        "script",
    ),
    Asset(
        REACT_DOM,
        "umd/react-dom.production.min.js",
        "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
        "script",
    ),
    Asset(
        GRAPHIQL, "graphiql.min.js", "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie", "script"
    ),
    Asset(
        GRAPHIQL, "graphiql.min.css", "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM", "style"
    ),
    Asset(
        EXPLORER,
        "dist/index.umd.js",
        "sha384-2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9",
        "script",
    ),
    Asset(
        EXPLORER, "dist/style.css", "sha384-5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi", "style"
    ),
)


def missing_assets(static_dir: Path = STATIC_DIR) -> list[Asset]:
    """The assets with no file in ``static_dir`` (a cheap check for each page
    view; the installer verifies the hashes)."""
    return [asset for asset in ASSETS if not (static_dir / asset.served_path).is_file()]
