"""One `Settings` object for every process: API, worker, beat and CLI.

Two deployments share one code path and differ only in these values:

* embedded (the default): SQLite, a filesystem object store and a Celery
  transport on SQLite, all under `data_dir`; no server needs to run.
* production: PostgreSQL, Redis (or RabbitMQ) and MinIO, named by
  `CONSENTGATE_DATABASE_URL`, `CONSENTGATE_BROKER_URL` and `CONSENTGATE_MINIO_*`.

Secrets have no usable defaults. In production a missing or well-known
secret stops the process at start-up rather than running insecurely.
"""

from __future__ import annotations

import base64
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values copied from examples and tutorials; refusing them stops a deployment
# that was never configured from running with a secret the world knows.
KNOWN_DEFAULT_SECRETS = frozenset(
    {"", "changethis", "changeme", "secret", "password", "minioadmin", "minio123"}
)


class ConfigurationError(RuntimeError):
    pass


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONSENTGATE_", extra="ignore")

    environment: Literal["embedded", "production"] = "embedded"
    data_dir: Path = Path("consentgate-data")

    database_url: str | None = None
    broker_url: str | None = None

    storage_backend: Literal["filesystem", "minio"] = "filesystem"
    minio_endpoint: str = "localhost:9000"
    minio_access_key: str | None = None
    minio_secret_key: SecretStr | None = None
    minio_bucket: str = "consentgate"
    minio_secure: bool = False
    minio_region: str | None = None

    # Fernet key (urlsafe base64 of 32 bytes) that encrypts face templates and
    # reference photos at rest. Embedded installs generate one under data_dir.
    template_key: SecretStr | None = None

    public_base_url: str = "http://127.0.0.1:8000"

    max_upload_bytes: int = Field(default=500 * 1024 * 1024, gt=0)
    # Decompression-bomb guard; a 48 MP phone photo fits, a 20k x 20k PNG does not.
    # Pillow refuses more than ~89.5 MP anyway, so a higher value has no effect.
    max_image_pixels: int = Field(default=89_000_000, gt=0)

    # Face matching (dlib 128-d encodings, Euclidean distance), calibrated on the
    # shared test faces; method and figures in docs/calibration.md.
    match_threshold: float = Field(default=0.45, gt=0, lt=1)
    match_margin: float = Field(default=0.10, ge=0, lt=1)
    # onnxruntime threads per worker process for face detection and descriptors;
    # 0 = min(2, CPUs), or CPUs / concurrency for `consentgate worker --concurrency N>1`.
    detector_threads: int = Field(default=0, ge=0)
    # Previews and review pictures only: screening looks at every decoded frame.
    video_sample_fps: float = Field(default=2.0, ge=2.0)

    # Screening time limit per medium, in seconds; past it the medium is failed.
    screening_time_limit_s: int = Field(default=900, gt=0)
    # A medium queued or screening for longer than this is re-enqueued by the sweep.
    stuck_after_s: int = Field(default=300, gt=0)
    # Beat period of the stuck-media sweep. With the grace below it bounds redelivery of a
    # lost screening: time limit + grace + interval (default 900 + 20 + 30 s), under the
    # issue-12 promise of the time limit plus a minute.
    sweep_interval_s: float = Field(default=30.0, gt=0)

    # --- Recovery (issue 12; docs/safety.md "Recovery") ---
    # Seconds past the time limit at which the worker hard-kills a screening, and after
    # which the sweep treats a medium still `screening` as lost (dead worker) and re-sends.
    screening_grace_s: int = Field(default=20, ge=1)
    # Deliveries of one medium that began and never ended (a worker killed, a crash in
    # native code). The next delivery fails it with reason `screening_crashed`.
    max_attempts: int = Field(default=5, ge=1)
    # Transient storage, database and broker errors: the medium waits and is tried again,
    # each wait as long as the outage so far (doubling), between these bounds, in seconds,
    # and fails (transiently, re-screened when the store answers) only once the outage has
    # lasted retry_horizon_s. Defaults: 15 s ... 10 min waits, for at least an hour.
    retry_backoff_s: float = Field(default=15.0, gt=0)
    retry_max_backoff_s: float = Field(default=600.0, gt=0)
    retry_horizon_s: float = Field(default=3600.0, gt=0)
    # Beat period of the probe that re-queues media failed for a transient reason.
    storage_probe_interval_s: float = Field(default=60.0, gt=0)
    # Pending-object intents older than this with no committed row are swept (every
    # version of the key deleted). Longer than any upload plus the client's retries.
    intent_grace_s: float = Field(default=3600.0, gt=0)
    intent_sweep_interval_s: float = Field(default=600.0, gt=0)
    # Object store client (MinIO/S3): seconds to connect, seconds of silence mid-response,
    # and retries, so a hung store fails a request in seconds, not minutes.
    minio_connect_timeout_s: float = Field(default=5.0, gt=0)
    minio_read_timeout_s: float = Field(default=30.0, gt=0)
    minio_retries: int = Field(default=2, ge=0)

    # Takedown webhooks: attempts in all, and the wait before the first retry in
    # seconds, doubling each time (capped at an hour): 30 s ... about 1 h 4 min.
    webhook_max_attempts: int = Field(default=8, ge=1, le=30)
    webhook_backoff_s: float = Field(default=30.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)

    # Enrolment templates: face_recognition's num_jitters (the template is the mean
    # descriptor of this many jittered copies of the face). Costs time at enrolment only;
    # screening encodes once. Measured in docs/calibration.md, "Enrolment templates".
    # A change takes effect for new templates; `consentgate templates reenrol` (or
    # POST /api/v1/biometrics/reenrol) recomputes the existing ones.
    enrol_jitters: int = Field(default=10, ge=1, le=100)
    # Extra templates SLT may add from event photos stop at this many templates per pupil
    # (reference photos included): 1-3 templates per pupil were measured (false matches
    # 0, nearest stranger 0.65-0.67); more are not measured. docs/calibration.md.
    max_templates_per_pupil: int = Field(default=3, ge=1, le=20)
    # Re-enrolment recomputes this many reference photos per transaction (progress is
    # committed after each batch, and a redelivered job resumes there).
    reenrol_batch: int = Field(default=8, ge=1, le=500)
    # Bearer token for GET /metrics. Production refuses to serve metrics without one
    # (counts of refusals and takedowns are nobody's business but the operator's);
    # an embedded install serves them to anyone who can reach it unless one is set.
    metrics_token: SecretStr | None = None
    # "json": one JSON object a line on stderr (services.core.logs); "text": as uvicorn
    # and Celery print them.
    log_format: Literal["text", "json"] = "text"

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        for name in ("template_key", "minio_secret_key", "metrics_token"):
            value = getattr(self, name)
            if value is not None and value.get_secret_value() in KNOWN_DEFAULT_SECRETS:
                raise ConfigurationError(f"CONSENTGATE_{name.upper()} is a well-known default")
        if self.template_key is not None:
            try:
                Fernet(self.template_key.get_secret_value().encode())
            except ValueError as exc:
                raise ConfigurationError(
                    "CONSENTGATE_TEMPLATE_KEY must be a Fernet key "
                    "(python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())')"
                ) from exc
        if self.environment == "production":
            missing = [
                f"CONSENTGATE_{n.upper()}"
                for n in ("database_url", "broker_url", "template_key")
                if getattr(self, n) is None
            ]
            if self.storage_backend == "minio" and (
                self.minio_access_key is None or self.minio_secret_key is None
            ):
                missing.append("CONSENTGATE_MINIO_ACCESS_KEY/CONSENTGATE_MINIO_SECRET_KEY")
            if missing:
                raise ConfigurationError("production needs " + ", ".join(missing))
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir.resolve() / 'consentgate.db'}"

    @property
    def resolved_broker_url(self) -> str:
        if self.broker_url:
            return self.broker_url
        return f"sqla+sqlite:///{self.data_dir.resolve() / 'broker.db'}"

    @property
    def objects_dir(self) -> Path:
        return self.data_dir.resolve() / "objects"

    def template_fernet(self) -> Fernet:
        return Fernet(self._template_key_bytes())

    def secrets_fernet(self) -> Fernet:
        """Encrypts secrets we must read back (webhook signing secrets). Derived from the
        template key with HKDF, so it is a separate key without a separate setting."""
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"consentgate:secrets:v1"
        ).derive(self._template_key_bytes())
        return Fernet(base64.urlsafe_b64encode(derived))

    def _template_key_bytes(self) -> bytes:
        if self.template_key is not None:
            return self.template_key.get_secret_value().encode()
        return _embedded_key(self.data_dir.resolve() / "secrets" / "template.key")


def _embedded_key(path: Path) -> bytes:
    """Read or create the embedded install's key; mode 0600, created atomically."""
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
