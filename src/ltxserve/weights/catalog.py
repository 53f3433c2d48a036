"""The one place that names the published weights `ltxserve models pull` fetches, part by part.

Every source named here is a Hugging Face repository in diffusers layout, so a part's folder in its repository
is its folder on disk and pulling is a filtered download, never a conversion. Lightricks publishes the distilled
transformers and LTX-2.3 as a whole only as original single-file checkpoints; for those the catalog names the
diffusers-format conversions that diffusers' own documentation and maintainers publish. (diffusers 0.42's
`from_single_file` could convert LTX-2.0's transformer and VAEs, but has no mapping for the connectors, the
vocoder or the latent upsampler, so it cannot rebuild the layout from the single files.)

Revisions are pinned to commits where other projects' tests pin the same repository (see README); the rest
follow `main`. A JSON file given with `--catalog FILE` adds or replaces entries: a mirror, a newer conversion,
another revision.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ..engine.profile import VERSIONS

# The folders `--model DIR` loads (see engine/loader.py); "" stands for the files at the top (model_index.json).
FAST_PATH_FOLDERS = (
    "",
    "transformer",
    "connectors",
    "vae",
    "audio_vae",
    "vocoder",
    "text_encoder",
    "tokenizer",
    "scheduler",
    "latent_upsampler",
)

# What each folder needs, as fnmatch patterns inside it. Only safetensors weights: some repositories also keep
# stale copies beside them (rootonchair/LTX-2-19b-distilled's text_encoder holds a 52 GB
# diffusion_pytorch_model-* duplicate of its model-* shards, which transformers never reads).
_DIFFUSERS_MODEL = (
    "config.json",
    "diffusion_pytorch_model*.safetensors",
    "diffusion_pytorch_model.safetensors.index.json",
)
_TRANSFORMERS_MODEL = ("config.json", "generation_config.json", "model*.safetensors", "model.safetensors.index.json")
_FILES = {
    "": ("model_index.json",),
    "text_encoder": _TRANSFORMERS_MODEL,
    "tokenizer": ("*",),
    "scheduler": ("scheduler_config.json",),
}


def _default_files(folder: str) -> tuple[str, ...]:
    """A folder's files when a catalog entry does not list them."""
    return _FILES.get(folder, _DIFFUSERS_MODEL)


class CatalogError(ValueError):
    pass


@dataclass(frozen=True)
class License:
    name: str
    url: str
    summary: str


@dataclass(frozen=True)
class Part:
    folder: str  # in the repository and on disk alike; "" for files at the top
    repo: str
    revision: str
    files: tuple[str, ...]
    license: License
    gated: bool = False

    @property
    def label(self) -> str:
        return self.folder or ", ".join(self.files)

    @property
    def patterns(self) -> tuple[str, ...]:
        """The part's files as `allow_patterns` over the whole repository."""
        return tuple(f"{self.folder}/{name}" if self.folder else name for name in self.files)


@dataclass(frozen=True)
class Source:
    """One repository at one revision, and the parts taken from it: one download."""

    repo: str
    revision: str
    parts: tuple[Part, ...]

    @property
    def patterns(self) -> list[str]:
        return [pattern for part in self.parts for pattern in part.patterns]


@dataclass(frozen=True)
class CatalogModel:
    name: str
    release: str
    summary: str
    parts: tuple[Part, ...]

    def __post_init__(self) -> None:
        folders = [part.folder for part in self.parts]
        missing = [folder or "model_index.json" for folder in FAST_PATH_FOLDERS if folder not in folders]
        repeated = sorted({folder or "(top)" for folder in folders if folders.count(folder) > 1})
        if missing or repeated:
            problems = ([f"no part for {', '.join(missing)}"] if missing else []) + (
                [f"more than one part for {', '.join(repeated)}"] if repeated else []
            )
            raise CatalogError(f"catalog model {self.name!r}: {'; '.join(problems)}")

    def sources(self) -> list[Source]:
        grouped: dict[tuple[str, str], list[Part]] = {}
        for part in self.parts:
            grouped.setdefault((part.repo, part.revision), []).append(part)
        return [Source(repo, revision, tuple(parts)) for (repo, revision), parts in grouped.items()]

    def licenses(self) -> list[tuple[License, tuple[Part, ...]]]:
        """Each license once, with the parts that come under it, in catalog order."""
        grouped: dict[License, list[Part]] = {}
        for part in self.parts:
            grouped.setdefault(part.license, []).append(part)
        return [(license_, tuple(parts)) for license_, parts in grouped.items()]


def _part(folder: str, repo: str, revision: str, license_: License, *, gated: bool = False) -> Part:
    return Part(folder, repo, revision, _default_files(folder), license_, gated)


def _parts(folders: Iterable[str], repo: str, revision: str, license_: License, *, gated: bool = False) -> list[Part]:
    return [_part(folder, repo, revision, license_, gated=gated) for folder in folders]


def _ltx_license(page: str) -> License:
    return License(
        name="LTX-2 Community License",
        url=page,
        summary="Lightricks' license for the LTX-2 weights and conversions of them: free for organisations below "
        "$10M annual revenue, a paid commercial agreement above that, and use restrictions.",
    )


LICENSES = {
    "ltx-2": _ltx_license("https://huggingface.co/Lightricks/LTX-2"),
    "ltx-2.3": _ltx_license("https://huggingface.co/Lightricks/LTX-2.3"),
    "ltx-2.5": _ltx_license("https://huggingface.co/Lightricks/LTX-2.5-Diffusers"),
    "gemma-3": License(
        name="Gemma Terms of Use",
        url="https://ai.google.dev/gemma/terms",
        summary="Google's terms for Gemma 3, the text encoder and its tokenizer, with its Prohibited Use Policy.",
    ),
    "gemma-4": License(
        name="Gemma 4 terms",
        url="https://huggingface.co/Lightricks/LTX-2.5-Diffusers",
        summary="Google's terms for Gemma 4, LTX-2.5's text encoder and its tokenizer, as the repository states them.",
    ),
}

_TEXT = ("text_encoder", "tokenizer")

# LTX-2.0: Lightricks/LTX-2 is in diffusers layout, but its transformer/ and connectors/ are the dev model (the
# distilled one is only the single file ltx-2-19b-distilled.safetensors there); rootonchair's conversion, the one
# diffusers' LTX-2 documentation uses, supplies them.
_LTX2 = ("Lightricks/LTX-2", "47da56e2ad66ce4125a9922b4a8826bf407f9d0a")
_LTX2_DISTILLED = ("rootonchair/LTX-2-19b-distilled", "388e2846f54aae51687498ffb6b27c7c2c9ce9e5")
# LTX-2.3: Lightricks/LTX-2.3 holds single files only; the diffusers organisation's conversion of the distilled
# checkpoint has every part but the upsampler, which dg845 (a diffusers maintainer) converted separately.
_LTX23 = ("diffusers/LTX-2.3-Distilled-Diffusers", "432e0d3c2d1769aaa4d295f9243f7062bf6b47ee")
_LTX23_UPSAMPLER = ("dg845/LTX-2.3-Spatial-Upsampler-Diffusers", "main")
# LTX-2.5: Lightricks' own diffusers repository (gated); its transformer/ is the distilled model, transformer_full/
# the full one, which the fast path does not need.
_LTX25 = ("Lightricks/LTX-2.5-Diffusers", "main")

BUILTIN = (
    CatalogModel(
        name="ltx-2-19b-distilled",
        release="2.0",
        summary="LTX-2 (19B) distilled, Gemma 3 12B text encoder",
        parts=(
            *_parts(("", "transformer", "connectors"), *_LTX2_DISTILLED, LICENSES["ltx-2"]),
            *_parts(("vae", "audio_vae", "vocoder", "scheduler", "latent_upsampler"), *_LTX2, LICENSES["ltx-2"]),
            *_parts(_TEXT, *_LTX2, LICENSES["gemma-3"]),
        ),
    ),
    CatalogModel(
        name="ltx-2.3-22b-distilled",
        release="2.3",
        summary="LTX-2.3 (22B) distilled, Gemma 3 12B text encoder",
        parts=(
            *_parts(
                ("", "transformer", "connectors", "vae", "audio_vae", "vocoder", "scheduler"),
                *_LTX23,
                LICENSES["ltx-2.3"],
            ),
            *_parts(_TEXT, *_LTX23, LICENSES["gemma-3"]),
            _part("latent_upsampler", *_LTX23_UPSAMPLER, LICENSES["ltx-2.3"]),
        ),
    ),
    CatalogModel(
        name="ltx-2.5-22b-distilled",
        release="2.5",
        summary="LTX-2.5 (22B) distilled, Gemma 4 text encoder; gated: accept its terms on the Hub first",
        parts=(
            *_parts(
                ("", "transformer", "connectors", "vae", "audio_vae", "vocoder", "scheduler", "latent_upsampler"),
                *_LTX25,
                LICENSES["ltx-2.5"],
                gated=True,
            ),
            *_parts(_TEXT, *_LTX25, LICENSES["gemma-4"], gated=True),
        ),
    ),
)

RECOMMENDED_MODEL = "ltx-2.3-22b-distilled"


class _LicenseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    url: str
    summary: str


class _PartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    folder: str
    repo: str
    revision: str = "main"
    files: list[str] | None = None
    license: str
    gated: bool = False


class _ModelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    release: str
    summary: str = ""
    parts: list[_PartIn]

    @field_validator("release")
    @classmethod
    def _known_release(cls, value: str) -> str:
        if value not in VERSIONS:
            raise ValueError(f"one of {', '.join(VERSIONS)}")
        return value


class _CatalogIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    licenses: dict[str, _LicenseIn] = {}
    models: list[_ModelIn]


def _from_file(path: Path) -> list[CatalogModel]:
    try:
        given = _CatalogIn.model_validate(json.loads(path.read_text()))
    except OSError as exc:
        raise CatalogError(f"cannot read the catalog {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path} is not JSON: {exc}") from None
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors())
        raise CatalogError(f"{path}: {where}") from None
    licenses = {**LICENSES, **{key: License(**value.model_dump()) for key, value in given.licenses.items()}}
    models = []
    for model in given.models:
        parts = []
        for part in model.parts:
            if part.license not in licenses:
                known = ", ".join(licenses)
                raise CatalogError(f"{path}: {model.name}: unknown license {part.license!r}; one of {known}")
            files = tuple(part.files) if part.files is not None else _default_files(part.folder)
            parts.append(Part(part.folder, part.repo, part.revision, files, licenses[part.license], part.gated))
        models.append(CatalogModel(model.name, model.release, model.summary, tuple(parts)))
    return models


def load_catalog(extra: Path | None = None) -> dict[str, CatalogModel]:
    """The built-in catalog, with the entries of the JSON file `extra` added over it (same name: replaced)."""
    models = {model.name: model for model in BUILTIN}
    if extra is not None:
        models.update({model.name: model for model in _from_file(extra)})
    return models
