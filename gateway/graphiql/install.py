"""``python -m gateway.graphiql.install``: put GraphiQL's pinned files in place.

Idempotent: files already there with the right sha384 are kept, and when all
are, nothing is fetched. Otherwise each package needed is fetched with
``npm pack`` (npm's ordinary client, its cache and registry settings), the
tarball's sha512 is checked against :mod:`gateway.graphiql.assets`, and the
files are extracted, checked and written atomically. Any mismatch stops the
install with an error and leaves no unchecked file behind.

Exit status: 0 installed (or already there), 1 a check failed or npm failed,
2 npm is not installed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from gateway.graphiql.assets import ASSETS, STATIC_DIR, Asset, NpmPackage

__all__ = ["InstallError", "install", "invalid_assets", "main"]

NPM_TIMEOUT_S = 300.0


class InstallError(RuntimeError):
    """A package could not be fetched, or a file did not match its hash."""


def _digest(algorithm: str, data: bytes) -> str:
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def invalid_assets(static_dir: Path = STATIC_DIR) -> list[Asset]:
    """The assets whose file is missing or does not match its sha384."""
    invalid = []
    for asset in ASSETS:
        path = static_dir / asset.served_path
        if not path.is_file() or _digest("sha384", path.read_bytes()) != asset.integrity:
            invalid.append(asset)
    return invalid


def _npm_pack(package: NpmPackage, workdir: Path) -> Path:
    """The package's tarball in ``workdir``, checked against its pinned sha512."""
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("npm")
    argv = [npm, "pack", package.spec, "--json", "--ignore-scripts", "--pack-destination", str(workdir)]
    try:
        done = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"npm pack {package.spec} did not finish within {NPM_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        raise InstallError(f"npm pack {package.spec} failed:\n{done.stderr.strip()[-2000:]}")
    try:
        filename = json.loads(done.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError) as exc:
        raise InstallError(f"npm pack {package.spec} printed no tarball name: {done.stdout[-500:]!r}") from exc
    # npm names a scoped package's tarball "graphiql-plugin-explorer-1.0.2.tgz".
    tarball = workdir / Path(filename).name
    got = _digest("sha512", tarball.read_bytes())
    if got != package.integrity:
        raise InstallError(f"{package.spec}: the tarball's integrity is {got}, expected {package.integrity}")
    return tarball


def _extract(tarball: Path, asset: Asset) -> bytes:
    with tarfile.open(tarball) as archive:
        member = archive.extractfile(f"package/{asset.path}")
        if member is None:
            raise InstallError(f"{asset.package.spec} has no file {asset.path}")
        data = member.read()
    got = _digest("sha384", data)
    if got != asset.integrity:
        raise InstallError(f"{asset.package.spec}/{asset.path}: integrity {got}, expected {asset.integrity}")
    return data


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def install(static_dir: Path = STATIC_DIR) -> list[Asset]:
    """Install what is missing or wrong; return the assets written."""
    todo = invalid_assets(static_dir)
    if not todo:
        return []
    with tempfile.TemporaryDirectory(prefix="graphiql-assets-") as tmp:
        packages = dict.fromkeys(asset.package for asset in todo)
        tarballs = {package: _npm_pack(package, Path(tmp)) for package in packages}
        # Check every file before writing any, so a failure leaves the old set.
        files = [(asset, _extract(tarballs[asset.package], asset)) for asset in todo]
    for asset, data in files:
        _write_atomically(static_dir / asset.served_path, data)
    return todo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.graphiql.install",
        description="Fetch GraphiQL's pinned files with npm and check their integrity.",
    )
    parser.add_argument("--check", action="store_true", help="only check the installed files; exit 1 if any is wrong")
    parser.add_argument("--dir", type=Path, default=STATIC_DIR, help="where the page's static files live")
    args = parser.parse_args(argv)
    if args.check:
        invalid = invalid_assets(args.dir)
        for asset in invalid:
            print(f"missing or changed: {asset.served_path}", file=sys.stderr)
        return 1 if invalid else 0
    try:
        written = install(args.dir)
    except FileNotFoundError:
        print("GraphiQL's files need npm (Node.js 20 or newer) to be fetched; npm is not installed.", file=sys.stderr)
        return 2
    except InstallError as exc:
        print(f"GraphiQL's files were not installed: {exc}", file=sys.stderr)
        return 1
    if written:
        print(f"GraphiQL: installed {len(written)} files into {args.dir / 'vendor'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
