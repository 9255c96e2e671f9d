"""``monitor tokens``: ticket API tokens."""

from __future__ import annotations

import sys

import click


@click.group("tokens")
def tokens_group() -> None:
    """Ticket API tokens (MONITOR_API_TOKENS holds name:role:sha256)."""


@tokens_group.command("hash")
@click.option("--new", "make_new", is_flag=True, help="Make a new random token.")
@click.option("--name", default=None, help="Also print the settings entry for NAME.")
@click.option(
    "--role",
    type=click.Choice(["viewer", "responder", "admin"]),
    default=None,
    help="Role of the settings entry (with --name).",
)
def tokens_hash(make_new: bool, name: str | None, role: str | None) -> None:
    """Print the SHA-256 of a token read from stdin (or of a new one with --new).

    Only the hash goes in the settings; give the token itself to its holder.
    """
    from monitor.web.auth import hash_token, new_token

    if (name is None) != (role is None):
        raise click.UsageError("--name and --role go together")
    if make_new:
        token = new_token()
    else:
        token = sys.stdin.read().rstrip("\r\n")
        if not token.strip():
            raise click.UsageError("no token on stdin (or use --new)")
    digest = hash_token(token)
    if make_new:
        click.echo(f"token:  {token}")
        click.echo(f"sha256: {digest}")
    else:
        click.echo(digest)
    if name is not None:
        click.echo(f"entry:  {name}:{role}:{digest}")
