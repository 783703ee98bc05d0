"""``mestwin evidence``: seal a report folder, verify a sealed one, print its PDF for
signing, make a signing key."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mestwin.cli import CommandGroups

app = typer.Typer(help="Sealed evidence packs: a run's report folder, signed (Ed25519).")


@app.command("verify")
def verify_command(
    folder: Annotated[Path, typer.Argument(help="a sealed report folder")],
    public_key: Annotated[
        Path | None,
        typer.Option(help="PEM public key you trust (default: the one in the pack)"),
    ] = None,
) -> None:
    """Check the pack's signature and every file's SHA-256; name each file changed, added
    or missing. Exit 0 when intact, 1 when not, 2 when it is not a sealed pack."""
    from twin.scenario.evidence import EvidenceError, verify

    try:
        result = verify(folder, public_key)
    except EvidenceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for problem in result.problems:
        typer.echo(f"INVALID {problem}")
    for name in result.changed:
        typer.echo(f"CHANGED {name}")
    for name in result.added:
        typer.echo(f"ADDED   {name}")
    for name in result.missing:
        typer.echo(f"MISSING {name}")
    source = "given" if public_key else "in the pack"
    if result.ok:
        typer.echo(f"OK: {folder} is as sealed (key {source}: {result.fingerprint})")
        if public_key is None:
            typer.echo(
                "note: checked with the pack's own key; compare its fingerprint with the one "
                "you recorded, or give --public-key, to know who sealed it"
            )
        raise typer.Exit(0)
    typer.echo(f"FAILED: {folder} changed since it was sealed (key {source})")
    raise typer.Exit(1)


@app.command("seal")
def seal_command(
    folder: Annotated[Path, typer.Argument(help="a report folder (holds report.json)")],
    signing_key: Annotated[
        Path | None, typer.Option(help="Ed25519 private key, PEM (default: one made now)")
    ] = None,
) -> None:
    """(Re)seal a report folder, e.g. after adding the signed PDF."""
    from twin.scenario.evidence import EvidenceError, seal

    try:
        done = seal(folder, signing_key)
    except EvidenceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"sealed {done.manifest} ({done.key} key {done.fingerprint})")


@app.command("pdf")
def pdf_command(
    folder: Annotated[Path, typer.Argument(help="a report folder (holds report.json)")],
    signing_key: Annotated[
        Path | None, typer.Option(help="Ed25519 private key, PEM (default: one made now)")
    ] = None,
) -> None:
    """Print report.pdf for the reviewer's signature (headless Chromium), then seal the
    folder again so the manifest covers the PDF."""
    from twin.scenario.evidence import EvidenceError, seal
    from twin.scenario.review_pdf import PdfError, write_review_pdf

    try:
        pdf = write_review_pdf(folder)
        done = seal(folder, signing_key)
    except (PdfError, EvidenceError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{pdf}; sealed {done.manifest} ({done.key} key {done.fingerprint})")


@app.command("keygen")
def keygen_command(
    private_key: Annotated[Path, typer.Argument(help="where to write the private key (PEM)")],
) -> None:
    """Make an Ed25519 key pair for ``--signing-key``: the private key (mode 600) and the
    public key beside it (``<name>.pub.pem``) for reviewers."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from twin.scenario.evidence import fingerprint, public_key_pem

    if private_key.exists():
        typer.echo(f"error: {private_key} exists; not overwritten", err=True)
        raise typer.Exit(2)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    private_key.touch(mode=0o600)
    private_key.write_bytes(pem)
    public = private_key.with_suffix(".pub.pem")
    public.write_bytes(public_key_pem(key.public_key()))
    typer.echo(f"{private_key} (private), {public} (public): {fingerprint(key.public_key())}")


def register(groups: CommandGroups) -> None:
    """Add ``mestwin evidence`` to the ``mestwin`` app."""
    groups.root.add_typer(app, name="evidence")
