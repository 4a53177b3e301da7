"""The settings of each job as one typed schema, shared by REST form fields, the browser UI and
the command line's ``--settings FILE.json``.

Names are the command line's options (``min_face`` or ``min-face`` for ``--min-face``);
unknown names are refused. Beautify's fields are :class:`~meiyan.retouch.beautify.BeautifySettings`'
with ``preset`` added: a field left out keeps the preset's value, and the settings are checked
by :class:`BeautifySettings` itself, so nothing here can drift from the API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from meiyan.cli.options import FORMATS
from meiyan.face import DEFAULT_MIN_FACE
from meiyan.makeup.looks import look_names
from meiyan.makeup.regions import REGION_NAMES, check_regions
from meiyan.retouch.beautify import FRECKLE_MODES, PRESETS, STRENGTHS, BeautifySettings
from meiyan.retouch.smooth import FILTER_SETTINGS

MinFace = Field(DEFAULT_MIN_FACE, gt=0.0, le=1.0, description="Smallest face searched for, as a "
                "share of the long side; smaller is slower.")


def _choices(name: str, value: str, allowed: list[str]) -> str:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; choose one of {allowed}")
    return value


def _skin_choices() -> list[str]:
    from meiyan.skin import choices

    return choices()


def _engines(slot: str) -> list[str]:
    from meiyan import engines

    return engines.slot(slot).choices()


class JobSettings(BaseModel):
    """Settings of one job: CLI option names, unknown names refused, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    job: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _cli_names(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {str(k).replace("-", "_"): v for k, v in data.items()}
        return data

    def cli_defaults(self) -> dict[str, object]:
        """The fields given (not defaulted) in command-line form, by option name."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class BeautifyJob(JobSettings):
    """``beautify``: a preset, and any strength or option overriding it."""

    job: ClassVar[str] = "beautify"
    preset: str = Field("natural", description=f"Starting strengths: {sorted(PRESETS)}.")
    smooth: float | None = Field(None, ge=0.0, le=1.0, description="Skin smoothing.")
    tone: float | None = Field(None, ge=0.0, le=1.0, description="Even tone: redness, blotches.")
    blemish: float | None = Field(None, ge=0.0, le=1.0, description="Blemish removal.")
    whiten: float | None = Field(None, ge=0.0, le=1.0, description="Hue-keeping whitening.")
    detail: float | None = Field(None, ge=0.0, le=1.0, description="Lighten dark lines.")
    texture: float | None = Field(None, ge=0.0, le=1.0, description="Fine texture kept.")
    freckles: str | None = Field(None, description=f"Under blemish removal: {FRECKLE_MODES}.")
    moles: bool | None = Field(None, description="Remove moles too.")
    filter: str | None = Field(None, description=f"Smoothing filter: {sorted(FILTER_SETTINGS)}.")
    skin: str = Field("auto", description="Skin segmenter, or 'none': the whole frame is skin.")
    min_face: float = MinFace
    engine: str = Field("auto", description="Retouching engine.")

    @model_validator(mode="after")
    def _valid(self) -> BeautifyJob:
        self.settings()
        return self

    def settings(self) -> BeautifySettings:
        """The :class:`BeautifySettings` these stand for; ``ValueError`` names what is wrong."""
        _choices("preset", self.preset, sorted(PRESETS))
        names = {f.name for f in fields(BeautifySettings)}
        chosen = {k: getattr(self, k) for k in type(self).model_fields if k in names}
        try:
            return BeautifySettings.preset(
                self.preset, **{k: v for k, v in chosen.items() if v is not None}
            )
        except TypeError as e:
            raise ValueError(str(e)) from None

    def strengths(self) -> dict[str, float]:
        """Every strength of the resulting settings (and ``texture``), by name."""
        s = self.settings()
        return {name: getattr(s, name) for name in (*STRENGTHS, "texture")}


class SmoothJob(JobSettings):
    """``smooth``: skin smoothing alone."""

    job: ClassVar[str] = "smooth"
    filter: str = Field("guided", description=f"Edge-preserving filter: {sorted(FILTER_SETTINGS)}.")
    strength: float = Field(0.5, ge=0.0, le=1.0, description="0 leaves the input as is.")
    texture: float = Field(0.5, ge=0.0, le=1.0, description="Fine texture kept.")
    skin: str = Field("auto", description="Skin segmenter, or 'none': the whole frame.")
    min_face: float = MinFace

    @field_validator("filter")
    @classmethod
    def _filter(cls, v: str) -> str:
        return _choices("filter", v, sorted(FILTER_SETTINGS))

    @field_validator("skin")
    @classmethod
    def _skin(cls, v: str) -> str:
        return _choices("skin method", v, [*_skin_choices(), "none"])


class MaskJob(JobSettings):
    """``mask``: the skin mask."""

    job: ClassVar[str] = "mask"
    method: str = Field("auto", description="Skin segmenter.")
    min_face: float = MinFace

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        return _choices("skin method", v, _skin_choices())


class LandmarksJob(JobSettings):
    """``landmarks``: faces as JSON."""

    job: ClassVar[str] = "landmarks"
    min_face: float = MinFace


class MakeupJob(JobSettings):
    """``makeup``: a named look (or a reference photo, given beside the settings), regions and
    shade (one value, or per region)."""

    job: ClassVar[str] = "makeup"
    look: str | None = Field(None, description="Named look; leave out to copy a reference.")
    regions: tuple[str, ...] = Field(REGION_NAMES, description="Regions: lips,eyes,... .")
    shade: float | dict[str, float] = Field(1.0, description="0-1, or per region: lips=1,skin=0.4.")
    min_face: float = MinFace
    engine: str = Field("auto", description="Makeup engine.")

    @field_validator("look")
    @classmethod
    def _look(cls, v: str | None) -> str | None:
        return None if v in (None, "") else _choices("look", v, look_names())

    @field_validator("regions", mode="before")
    @classmethod
    def _split_regions(cls, v: Any) -> Any:
        return [r.strip() for r in v.split(",") if r.strip()] if isinstance(v, str) else v

    @field_validator("regions")
    @classmethod
    def _regions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError(f"choose at least one region of {list(REGION_NAMES)}")
        return check_regions(v)

    @field_validator("shade", mode="before")
    @classmethod
    def _parse_shade(cls, v: Any) -> Any:
        if isinstance(v, str) and "=" in v:
            pairs = [item.partition("=") for item in v.split(",") if item.strip()]
            return {k.strip(): n.strip() for k, _, n in pairs}
        return v

    @field_validator("shade")
    @classmethod
    def _shade(cls, v: float | dict[str, float]) -> float | dict[str, float]:
        if isinstance(v, dict):
            check_regions(v)
        for value in v.values() if isinstance(v, dict) else [v]:
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"shade must be in [0, 1], got {value}")
        return v

    @field_validator("engine")
    @classmethod
    def _engine(cls, v: str) -> str:
        return _choices("makeup engine", v, _engines("makeup"))

    def cli_defaults(self) -> dict[str, object]:
        out = super().cli_defaults()
        if "regions" in out:
            out["regions"] = ",".join(self.regions)
        if "shade" in out:
            shade = self.shade
            out["shade"] = (",".join(f"{k}={v}" for k, v in shade.items())
                            if isinstance(shade, dict) else str(shade))
        return out


class EditJob(JobSettings):
    """``edit``: the engine and the seed of its noise (mask, sketch and colour are images)."""

    job: ClassVar[str] = "edit"
    engine: str = Field("auto", description="'sc-fegan', 'classic' (a membrane fill that "
                        "follows the sketch and colours), 'telea' (no guidance) or 'auto'.")
    seed: int = Field(0, description="Seed of the noise input.")

    @field_validator("engine")
    @classmethod
    def _engine(cls, v: str) -> str:
        import meiyan.edit  # noqa: F401  (registers the edit engines)

        return _choices("edit engine", v, _engines("edit"))


class OutputOptions(BaseModel):
    """How a result image is encoded: ``format`` (default: the input's) and ``quality``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: str | None = Field(None, description="jpg, png, webp, tif or bmp [the input's].")
    quality: int = Field(95, ge=1, le=100, description="JPEG and WebP quality.")

    @field_validator("format")
    @classmethod
    def _format(cls, v: str | None) -> str | None:
        return _choices("format", v.lower(), list(FORMATS)) if v else None


JOBS: dict[str, type[JobSettings]] = {
    m.job: m for m in (BeautifyJob, SmoothJob, MaskJob, LandmarksJob, MakeupJob, EditJob)
}
"""The settings model of each job, by command name."""


def problem(error: ValidationError) -> str:
    """A validation error as one line: ``name: what is wrong`` for each field."""
    parts = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"])
        message = str(e["msg"]).removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            message = "unknown setting"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(" ".join(p.split()) for p in parts)


def parse(job: str, values: Mapping[str, Any]) -> JobSettings:
    """The settings of ``job`` from ``values``; ``ValueError`` with a one-line message."""
    try:
        return JOBS[job].model_validate(dict(values))
    except ValidationError as e:
        raise ValueError(problem(e)) from None


def load(job: str, path: Path) -> JobSettings:
    """The settings of ``job`` from a JSON file holding one object."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read settings ({' '.join(str(e).split())})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: settings must be a JSON object of name: value")
    try:
        return parse(job, values)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
