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
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import click

from models.orm import Role

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from services.core.auth import Principal


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
@click.option("--expires-in", "expires_in", default=None,
              help="Expire after this long: 12h, 90d, 2w (default: never).")
def token_create(org_slug: str, role: str, name: str, expires_in: str | None) -> None:
    """Print a new bearer token once, alone on the last line."""
    from models.db import transaction
    from models.repositories.organisations import OrganisationRepository
    from services.core import runtime
    from services.core import tokens as keys
    from services.core.audit import SystemActor
    from services.core.errors import InvalidInput

    try:
        lifetime = keys.parse_duration(expires_in) if expires_in is not None else None
    except InvalidInput as exc:
        raise click.BadParameter(exc.message, param_hint="--expires-in") from exc
    with transaction(runtime.sessions()) as session:
        found = OrganisationRepository(session).get_by_slug(org_slug)
        if found is None:
            raise click.ClickException(f"no organisation {org_slug!r}")
        issued = keys.create(session, SystemActor("cli", found.id), found, Role(role), name,
                             lifetime)
        until = issued.token.expires_at
    expiry = f", expires {until:%Y-%m-%d %H:%M} UTC" if until else ""
    click.echo(f"token for {name} ({role} at {org_slug}{expiry}); it is shown only once:",
               err=True)
    click.echo(issued.secret)


@token.command("list")
@click.option("--org", "org_slug", required=True)
def token_list(org_slug: str) -> None:
    """One key a line: id, role, name, created, expiry, revoked (tab-separated)."""
    from models.db import transaction
    from models.repositories.organisations import OrganisationRepository
    from services.core import runtime
    from services.core import tokens as keys

    with transaction(runtime.sessions(), write=False) as session:
        found = OrganisationRepository(session).get_by_slug(org_slug)
        if found is None:
            raise click.ClickException(f"no organisation {org_slug!r}")
        for t in keys.list_tokens(session, found.id):
            expiry = f"expires {t.expires_at:%Y-%m-%dT%H:%MZ}" if t.expires_at else "no expiry"
            if t.expires_at and keys.state(t) == "expired":
                expiry = f"expired {t.expires_at:%Y-%m-%dT%H:%MZ}"
            revoked = f"revoked {t.revoked_at:%Y-%m-%dT%H:%MZ}" if t.revoked_at else "active"
            click.echo(f"{t.id}\t{t.role}\t{t.name}\tcreated {t.created_at:%Y-%m-%dT%H:%MZ}"
                       f"\t{expiry}\t{revoked}")


@token.command("revoke")
@click.argument("token_id", type=click.UUID)
def token_revoke(token_id: object) -> None:
    """Revoke a key at once: it answers 401 from now on and its browser sessions end."""
    import uuid

    from models.db import transaction
    from models.repositories.organisations import TokenRepository
    from services.core import runtime
    from services.core import tokens as keys
    from services.core.audit import SystemActor

    assert isinstance(token_id, uuid.UUID)
    with transaction(runtime.sessions()) as session:
        row = TokenRepository(session).get(token_id)
        if row is None:
            raise click.ClickException(f"no API key {token_id}")
        was = row.revoked_at
        keys.revoke(session, SystemActor("cli", row.org_id), token_id)
    click.echo(f"key {token_id} was already revoked" if was else f"revoked key {token_id}")


# --- bulk import (issue 10) -------------------------------------------------------------


@main.group("import")
def import_group() -> None:
    """Bulk import: the register from an MIS export, enrolment photos by UPN."""


def _operator(session: Session, org_slug: str) -> Principal:
    """The person at the command line, as a principal with full rights in the
    organisation (audited as admin:cli)."""
    import uuid

    from models.repositories.organisations import OrganisationRepository
    from services.core.auth import Principal

    found = OrganisationRepository(session).get_by_slug(org_slug)
    if found is None:
        raise click.ClickException(f"no organisation {org_slug!r}")
    return Principal(token_id=uuid.UUID(int=0), org=found, role=Role.ADMIN, name="cli")


@import_group.command("pupils")
@click.option("--org", "org_slug", required=True)
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file and show what would change.")
@click.option("--sync", is_flag=True, help="Mark pupils missing from the file as left "
              "(templates erased, publications decided again).")
def import_pupils(org_slug: str, csv_file: Path, dry_run: bool, sync: bool) -> None:
    """Import pupils and consents from a SIMS, Arbor or ConsentGate CSV (docs/import.md).

    Atomic: a file with any error imports nothing, and every error is listed."""
    from models.db import transaction
    from services.core import runtime
    from services.core.config import get_settings
    from services.core.errors import InvalidInput
    from services.imports import pupils as importer

    data = csv_file.read_bytes()
    bars: dict[str, object] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            label = {"check": "checking rows", "leavers": "marking leavers"}.get(stage, stage)
            bar = click.progressbar(length=total, label=label, file=sys.stderr)
            bar.__enter__()
            bars[stage] = bar
        bar.update(1)  # type: ignore[attr-defined]
        if done >= total:
            bar.__exit__(None, None, None)  # type: ignore[attr-defined]

    try:
        with transaction(runtime.sessions(), write=not dry_run) as session:
            principal = _operator(session, org_slug)
            result = importer.import_pupils(session, get_settings(), principal, data,
                                            sync=sync, dry_run=dry_run, progress=progress)
    except InvalidInput as exc:
        for e in exc.details.get("errors", []):
            click.echo(f"row {e['row']}, column {e['column'] or '-'}: {e['message']}"
                       + (f" ({e['value']!r})" if e.get("value") else ""), err=True)
        raise click.ClickException(exc.message) from exc
    verb = "would be" if dry_run else "were"
    click.echo(f"{result.rows} rows ({result.format} format): {result.created} created, "
               f"{result.updated} updated, {result.unchanged} unchanged, {result.left} "
               f"left, {result.consents_recorded} consents recorded"
               + (" (dry run: nothing was changed)" if dry_run else ""))
    if result.ignored_columns:
        click.echo(f"columns not used: {', '.join(result.ignored_columns)}", err=True)
    if result.publications_taken_down and not dry_run:
        click.echo(f"{result.publications_taken_down} publications {verb} taken down")


@import_group.command("photos")
@click.option("--org", "org_slug", required=True)
@click.argument("source", type=click.Path(exists=True, path_type=Path))
def import_photos(org_slug: str, source: Path) -> None:
    """Enrol reference photos named <UPN>.jpg or <UPN>_2.jpg from a folder or a zip."""
    from models.db import transaction
    from services.core import runtime
    from services.core.config import get_settings
    from services.core.errors import InvalidInput
    from services.imports import photos as importer
    from services.words import PHOTO_RESULTS, photo_refusal_text

    try:
        entries = (importer.entries_from_dir(source) if source.is_dir()
                   else importer.entries_from_zip(source.read_bytes()))
    except InvalidInput as exc:
        raise click.ClickException(exc.message) from exc
    with click.progressbar(length=len(entries), label="checking photos",
                           file=sys.stderr) as bar, transaction(runtime.sessions()) as session:
        principal = _operator(session, org_slug)
        outcome = importer.import_photos(
            session, runtime.store(), get_settings(), principal,
            entries, progress=lambda stage, _d, _t: bar.update(1) if stage == "check"
            else None)
    for r in outcome.results:
        words = (photo_refusal_text(r.reason, r.data) if r.reason is not None
                 else PHOTO_RESULTS[r.result])
        click.echo(f"{r.file}\t{r.result}\t{words}")
    counts = outcome.counts()
    click.echo(f"{counts['enrolled']} enrolled, {counts['refused']} refused, "
               f"{counts['unknown_upn']} unknown UPN, {counts['already_enrolled']} already "
               "enrolled")


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


@main.group()
def templates() -> None:
    """Face templates (biometric data: only while biometric consent is current)."""


def _org_id(slug: str) -> uuid.UUID:
    from models.db import transaction
    from models.repositories.organisations import OrganisationRepository
    from services.core import runtime

    with transaction(runtime.sessions(), write=False) as session:
        found = OrganisationRepository(session).get_by_slug(slug)
        if found is None:
            raise click.ClickException(f"no organisation {slug!r}")
        return found.id


@templates.command("reenrol")
@click.option("--org", "org_slug", required=True)
@click.option("--background", is_flag=True,
              help="Hand the job to the workers and return; see `templates status`.")
def templates_reenrol(org_slug: str, background: bool) -> None:
    """Recompute every template from its stored reference photo with the current settings
    (CONSENTGATE_ENROL_JITTERS), showing progress. Resumes a job already running; media
    screened against the old templates are re-screened afterwards."""
    from models.db import transaction
    from services.biometrics import reenrol
    from services.core import runtime
    from services.core.audit import SystemActor
    from services.core.config import get_settings

    org_id = _org_id(org_slug)
    settings = get_settings()
    with transaction(runtime.sessions()) as session:
        progress, created = reenrol.start(session, settings, SystemActor("cli", org_id),
                                          org_id, send=background)
    verb = "started" if created else "already running:"
    click.echo(f"re-enrolment {verb} job {progress.job_id}, {progress.total} reference "
               f"photos, num_jitters={progress.jitters}", err=True)
    if background:
        click.echo(str(progress.job_id))
        return
    with click.progressbar(length=max(progress.total, 1), label="re-enrolling",
                           file=sys.stderr) as bar:
        bar.update(min(progress.handled, progress.total))
        seen = [progress.handled]

        def advance(p: reenrol.ReenrolProgress) -> None:
            bar.update(max(0, min(p.handled, p.total) - seen[0]))
            seen[0] = min(p.handled, p.total)

        final = reenrol.run(runtime.sessions(), runtime.store(), settings, progress.job_id,
                            on_progress=advance)
    click.echo(f"{final.status}: {final.done} templates recomputed, {final.skipped} skipped, "
               f"{final.erased} erased (no current biometric consent)")
    if final.status != "done":
        sys.exit(1)


@templates.command("status")
@click.option("--org", "org_slug", required=True)
def templates_status(org_slug: str) -> None:
    """The newest re-enrolment job of an organisation and its progress."""
    from models.db import transaction
    from models.repositories.templates import TemplateJobRepository
    from services.biometrics import reenrol
    from services.core import runtime

    org_id = _org_id(org_slug)
    with transaction(runtime.sessions(), write=False) as session:
        job = TemplateJobRepository(session).latest(org_id)
        progress = None if job is None else reenrol.progress_of(job)
    if progress is None:
        click.echo("no re-enrolment yet")
        return
    click.echo(f"job {progress.job_id}: {progress.status}, {progress.handled}/{progress.total} "
               f"({100 * progress.fraction:.0f}%), {progress.done} recomputed, "
               f"{progress.skipped} skipped, {progress.erased} erased; num_jitters="
               f"{progress.jitters}; started {progress.started_at:%Y-%m-%d %H:%M} UTC by "
               f"{progress.requested_by}" + (f"; error: {progress.error}" if progress.error
                                             else ""))


@main.group()
def storage() -> None:
    """Check the object store against the database."""


@storage.command("reconcile")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
def storage_reconcile(dry_run: bool) -> None:
    """Delete every object (all its versions) that no row owns: files written whose row
    never committed, and versions left of files whose rows are gone. Uploads still in
    flight (an intent younger than CONSENTGATE_INTENT_GRACE_S) are left alone."""
    from collections.abc import Iterable, Iterator

    from services.core import intents, runtime
    from services.core.config import get_settings

    def track(items: list[str], label: str) -> Iterator[str]:
        bar: Iterable[str]
        with click.progressbar(items, label=label, file=sys.stderr) as bar:
            yield from bar

    report = intents.reconcile(runtime.sessions(), runtime.store(), get_settings(),
                               dry_run=dry_run, track=track)
    verb = "would delete" if dry_run else "deleted"
    for key in report.orphans:
        click.echo(f"{verb}\t{key}")
    click.echo(f"{len(report.orphans)} object(s) with no row; "
               f"{report.deleted if not dry_run else 0} deleted")


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
