"""`consentgate`: the one command for running, administering and checking ConsentGate.

Every command honours --data-dir / CONSENTGATE_DATA_DIR (the embedded default)
and the CONSENTGATE_* settings.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import click

from models.orm import Role


def _settings_reset(data_dir: Path | None) -> None:
    if data_dir is not None:
        os.environ["CONSENTGATE_DATA_DIR"] = str(data_dir.resolve())
    from services.core import runtime

    runtime.reset()


def _prepare_embedded() -> None:
    from services.core.config import get_settings

    settings = get_settings()
    if settings.database_url is None or settings.storage_backend == "filesystem":
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)


DATA_DIR_HELP = ("Where the embedded database, broker and files live "
                 "[env CONSENTGATE_DATA_DIR; default ./consentgate-data].")


def plain_error(exc: Exception) -> str:
    """One line an administrator can act on, for an error no command handled."""
    from sqlalchemy.exc import OperationalError

    from services.core.config import ConfigurationError
    from services.core.errors import ConsentGateError

    if isinstance(exc, ConsentGateError):
        return exc.message
    if isinstance(exc, ConfigurationError):
        return str(exc)
    if isinstance(exc, OperationalError):
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else ""
        return f"the database is not reachable ({first})"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class PlainErrors(click.Group):
    """An error no command handled prints one plain line and exits 1; `--debug` (before
    the command) shows the traceback instead."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(
                plain_error(exc) + " (run with --debug for the details)") from None


@click.group(cls=PlainErrors)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help=DATA_DIR_HELP)
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, debug: bool) -> None:
    """ConsentGate: consent-aware image screening for schools."""
    _settings_reset(data_dir)
    if ctx.invoked_subcommand == "serve":
        return  # serve may name its own --data-dir; it prepares and migrates itself
    _prepare_embedded()
    # wait-ready only polls a URL: it must not migrate while `serve` does.
    if ctx.invoked_subcommand not in (None, "migrate", "wait-ready"):
        _upgrade_embedded()


def _upgrade_embedded() -> None:
    """A fresh embedded data directory gets its schema before the first command uses it
    (`org create` on a new install), as `serve` and `migrate` do. Production schemas
    are upgraded only by `migrate`, deliberately."""
    from models.migrate import upgrade
    from services.core.config import get_settings

    url = get_settings().resolved_database_url
    if url.startswith("sqlite"):
        upgrade(url)


@main.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from models.migrate import upgrade
    from services.core.config import get_settings

    upgrade(get_settings().resolved_database_url)
    click.echo("database is up to date")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--concurrency", default=1, show_default=True, type=int,
              help="Screening worker processes.")
@click.option("--no-worker", is_flag=True, help="Run only the API (production runs workers "
              "separately).")
@click.option("--data-dir", "serve_data_dir", type=click.Path(path_type=Path), default=None,
              help=DATA_DIR_HELP)
def serve(host: str, port: int, concurrency: int, no_worker: bool,
          serve_data_dir: Path | None) -> None:
    """Run the API, plus an embedded screening worker and scheduler."""
    import uvicorn

    from models.migrate import upgrade
    from services.core import runtime
    from services.core.config import get_settings

    if serve_data_dir is not None:
        _settings_reset(serve_data_dir)
    _prepare_embedded()

    if "CONSENTGATE_PUBLIC_BASE_URL" not in os.environ:
        os.environ["CONSENTGATE_PUBLIC_BASE_URL"] = f"http://{host}:{port}"
        runtime.reset()
    settings = get_settings()
    upgrade(settings.resolved_database_url)
    worker: subprocess.Popen[bytes] | None = None
    if not no_worker:
        # The same Celery tasks as production, in a child process over the
        # embedded (or configured) broker; it dies with us.
        worker = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
            [sys.executable, "-m", "services.cli", "worker", "--beat",
             "--concurrency", str(concurrency)],
            env=os.environ.copy(),
            preexec_fn=_die_with_parent,
        )
        threading.Thread(target=_exit_with, args=(worker,), daemon=True).start()
    try:
        from services.app import create_app
        from services.core import logs

        json_logs = logs.configure(settings.log_format)
        # log_config=None: uvicorn then leaves logging as logs.configure() set it.
        from uvicorn.config import LOGGING_CONFIG

        uvicorn.run(create_app(), host=host, port=port, log_level="info",
                    log_config=None if json_logs else LOGGING_CONFIG)
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()


def _die_with_parent() -> None:
    """Linux: the kernel sends the embedded worker SIGTERM when `serve` exits, however it
    exits (even SIGKILL), so no orphaned worker keeps screening for a stopped site."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _exit_with(worker: subprocess.Popen[bytes]) -> None:
    """Stop serving if the embedded worker dies: an API that accepts uploads nobody will
    ever screen would leave staff waiting on photos that never clear."""
    code = worker.wait()
    if code != 0:
        click.echo(f"embedded worker exited with status {code}; stopping", err=True)
        os.kill(os.getpid(), signal.SIGTERM)


def _json_logs_for_celery(log_format: str) -> None:
    """With CONSENTGATE_LOG_FORMAT=json, Celery keeps the JSON handler (setup_logging
    connected means Celery configures no logging of its own)."""
    from celery.signals import setup_logging

    from services.core import logs

    if logs.configure(log_format):
        setup_logging.connect(lambda **_: logs.configure(log_format), weak=False)


@main.command()
@click.option("--concurrency", default=1, show_default=True, type=int)
@click.option("--beat", is_flag=True, help="Also run the periodic scheduler (one per site).")
@click.option("--loglevel", default="info", show_default=True)
def worker(concurrency: int, beat: bool, loglevel: str) -> None:
    """Run a screening worker."""
    if concurrency > 1 and "CONSENTGATE_DETECTOR_THREADS" not in os.environ:
        # Worker processes already share the cores; more onnxruntime threads per
        # process than cores per process only contend (docs/calibration.md, Speed).
        os.environ["CONSENTGATE_DETECTOR_THREADS"] = str(
            max(1, (os.cpu_count() or 1) // concurrency))
        from services.core import runtime

        runtime.reset()
    from services.core.config import get_settings
    from workers.celery_app import app

    _json_logs_for_celery(get_settings().log_format)
    argv = ["worker", f"--concurrency={concurrency}", f"--loglevel={loglevel}",
            "-Q", "consentgate", "--without-gossip", "--without-mingle"]
    if beat:
        argv += ["--beat", f"--schedule={get_settings().data_dir.resolve() / 'beat-schedule'}"]
    app.worker_main(argv=argv)


@main.command()
@click.option("--loglevel", default="info", show_default=True)
def beat(loglevel: str) -> None:
    """Run the periodic scheduler (sweeps for stuck screening)."""
    from services.core.config import get_settings
    from workers.celery_app import app

    _json_logs_for_celery(get_settings().log_format)
    schedule = get_settings().data_dir.resolve() / "beat-schedule"
    app.start(argv=["beat", f"--loglevel={loglevel}", f"--schedule={schedule}"])


@main.group()
def org() -> None:
    """Organisations (schools and services)."""


@org.command("create")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="Policy YAML/JSON (see policies/).")
def org_create(slug: str, name: str, policy_file: Path | None) -> None:
    """Create an organisation with its policy."""
    from models.db import transaction
    from models.repositories.organisations import OrganisationRepository
    from services.core import runtime
    from services.core.audit import SystemActor, record
    from services.core.policy import DEFAULT_POLICY, load_policy_file

    policy = load_policy_file(policy_file) if policy_file else DEFAULT_POLICY
    with transaction(runtime.sessions()) as session:
        repo = OrganisationRepository(session)
        if repo.get_by_slug(slug) is not None:
            raise click.ClickException(f"organisation {slug!r} already exists")
        created = repo.create(slug, name, policy.model_dump(mode="json"))
        record(session, SystemActor("cli", created.id), "organisation.created",
               f"org:{created.id}", {"slug": slug, "policy": policy.model_dump(mode="json")})
    click.echo(f"created organisation {slug} ({policy.name} policy)")


@org.command("list")
def org_list() -> None:
    from models.db import transaction
    from models.repositories.organisations import OrganisationRepository
    from services.core import runtime

    with transaction(runtime.sessions()) as session:
        for o in OrganisationRepository(session).list_all():
            click.echo(f"{o.slug}\t{o.name}\t{o.policy.get('name')}")


@org.command("webhook")
@click.argument("slug")
@click.option("--url", help="Where takedown notices are POSTed (http:// or https://).")
@click.option("--remove", is_flag=True, help="Stop sending webhooks to this organisation.")
def org_webhook(slug: str, url: str | None, remove: bool) -> None:
    """Set the takedown webhook; print a new signing secret once, alone on the last line."""
    from models.db import transaction
    from models.repositories.organisations import OrganisationRepository
    from services.core import runtime
    from services.core.config import get_settings
    from services.core.errors import InvalidInput
    from services.takedown import webhooks

    if remove == (url is not None):
        raise click.UsageError("give exactly one of --url or --remove")
    with transaction(runtime.sessions()) as session:
        found = OrganisationRepository(session).get_by_slug(slug)
        if found is None:
            raise click.ClickException(f"no organisation {slug!r}")
        if remove:
            gone = webhooks.remove_endpoint(session, found)
            click.echo("webhook removed" if gone else "no webhook was configured")
            return
        assert url is not None
        try:
            secret = webhooks.configure_endpoint(session, get_settings(), found, url)
        except InvalidInput as exc:
            raise click.ClickException(exc.message) from exc
    click.echo(f"takedown webhook for {slug} -> {url}; signing secret, shown only once "
               "(any earlier secret no longer signs):", err=True)
    click.echo(secret)


@main.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.option("--org", "org_slug", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--name", required=True, help="Who or what holds the token.")
def token_create(org_slug: str, role: str, name: str) -> None:
    """Print a new bearer token once, alone on the last line."""
    from models.db import transaction
    from models.repositories.organisations import OrganisationRepository
    from services.core import runtime
    from services.core.audit import SystemActor, record
    from services.core.auth import issue_token

    with transaction(runtime.sessions()) as session:
        found = OrganisationRepository(session).get_by_slug(org_slug)
        if found is None:
            raise click.ClickException(f"no organisation {org_slug!r}")
        secret = issue_token(session, found, Role(role), name)
        record(session, SystemActor("cli", found.id), "token.created", f"org:{found.id}",
               {"role": role, "name": name})
    click.echo(f"token for {name} ({role} at {org_slug}); it is shown only once:", err=True)
    click.echo(secret)


@main.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
def audit_verify() -> None:
    """Recompute the hash chain; name the first broken link."""
    from models.db import transaction
    from services.core import runtime
    from services.core.audit import verify_chain

    with transaction(runtime.sessions()) as session:
        report = verify_chain(session)
    if report.ok:
        click.echo(f"audit trail intact: {report.events} events")
        return
    where = f"at event {report.first_broken_id}" if report.first_broken_id else "at the end"
    click.echo(f"audit trail BROKEN {where}: {report.problem}")
    sys.exit(1)


@main.command()
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
def purge(dry_run: bool) -> None:
    """Delete media past their retention date (every object version), keeping tombstones.

    Media on legal hold are listed and kept."""
    from models.db import transaction
    from models.repositories.organisations import OrganisationRepository
    from services.core import runtime
    from services.lifecycle import retention

    with transaction(runtime.sessions()) as session:
        found = retention.candidates(session)
        slugs = {o.id: o.slug for o in OrganisationRepository(session).list_all()}
        due = [(m.id, slugs.get(m.org_id, "?"), m.retention_until) for m in found.due]
        held = [(m.id, slugs.get(m.org_id, "?"), m.retention_until) for m in found.held]
    for media_id, slug, until in held:
        click.echo(f"on legal hold, kept\t{media_id}\t{slug}\tretention ended {until}")
    if dry_run:
        for media_id, slug, until in due:
            click.echo(f"would purge\t{media_id}\t{slug}\tretention ended {until}")
        click.echo(f"{len(due)} media would be purged; {len(held)} kept on legal hold")
        return
    with click.progressbar(length=len(due), label="purging", file=sys.stderr) as bar:
        run = retention.purge_each(runtime.sessions(), runtime.store(),
                                   [media_id for media_id, _, _ in due],
                                   progress=lambda _id: bar.update(1))
    click.echo(f"purged {run.purged} media; {len(held) + run.skipped} kept on legal hold "
               "or no longer due")
    if run.failed:
        click.echo(f"{run.failed} could not be purged now; see the log", err=True)
        sys.exit(1)


@main.command("wait-ready", hidden=True)
@click.option("--url", default="http://127.0.0.1:8000/healthz")
@click.option("--timeout", default=60.0)
def wait_ready(url: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise click.ClickException(f"{url} not ready after {timeout}s")


if __name__ == "__main__":
    main()
