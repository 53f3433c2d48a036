"""Fetching a catalog model into the directory `--model DIR` loads, with huggingface_hub's own download code.

Each repository is resolved to a commit and listed once (`plan`), then fetched with one `snapshot_download`
filtered by its parts' patterns into the same directory (`pull`), so the layout on disk is the layout of the
repositories. What "resumable" means is what huggingface_hub 1.32 does: a connection lost mid-file is resumed with
an HTTP Range request, within the run; files finished by an earlier run are recorded (DIR/.cache/huggingface/)
and not fetched again; a file cut off because the process itself stopped starts over. Xet-stored files go through
hf_xet when the Hub offers it.

The Hub is `HF_ENDPOINT` (read on each call, not once at import as huggingface_hub does) and the token is
huggingface_hub's: `HF_TOKEN`, or the one `hf auth login` saved.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .catalog import CatalogModel, Part, Source

DEFAULT_ENDPOINT = "https://huggingface.co"


class PullError(Exception):
    """A reason the weights could not be fetched, in words a user can act on."""


@dataclass(frozen=True)
class PlannedFile:
    part: Part
    path: str
    size: int


@dataclass(frozen=True)
class Plan:
    model: CatalogModel
    commits: dict[Source, str]
    files: tuple[PlannedFile, ...]

    def size(self, part: Part | None = None) -> int:
        return sum(file.size for file in self.files if part is None or file.part == part)


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


@contextlib.contextmanager
def _online() -> Iterator[None]:
    # ltxserve's command line runs with HF_HUB_OFFLINE=1 (cli/main.py) so that serving never reaches the Hub;
    # fetching weights is the one thing that must. huggingface_hub reads the setting once, at import.
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


@contextlib.contextmanager
def _explained(source: Source) -> Iterator[None]:
    """huggingface_hub's errors for `source`, as a PullError that says what to do."""
    import httpx
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
        RevisionResolutionError,
    )

    page = f"{endpoint()}/{source.repo}"
    try:
        yield
    except GatedRepoError as exc:
        if exc.response.status_code == 401:
            raise PullError(
                f"{source.repo} is gated and no valid token was sent: sign in at {page}, accept its terms, then set "
                "HF_TOKEN to an access token of that account (or run `hf auth login`) and run this again."
            ) from None
        raise PullError(
            f"{source.repo} is gated and the account of the token sent (HF_TOKEN) has no access yet: accept its "
            f"terms at {page} while signed in to that account. The Hub said: {exc.server_message}"
        ) from None
    except RepositoryNotFoundError:
        raise PullError(
            f"{source.repo} was not found at {endpoint()}, or it is private: check the catalog entry, or set "
            "HF_TOKEN to an access token that can read it."
        ) from None
    except RevisionNotFoundError:
        raise PullError(f"{source.repo} has no revision {source.revision!r}: check the catalog entry.") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code
        raise PullError(f"{endpoint()} answered {status} for {source.repo}: {exc.server_message or exc}") from None
    except (httpx.TransportError, RevisionResolutionError, LocalEntryNotFoundError) as exc:
        raise PullError(f"Cannot reach {endpoint()} (HF_ENDPOINT) for {source.repo}: {exc}") from None


def plan(model: CatalogModel) -> Plan:
    """Every file `pull` will fetch, at the commit each repository's revision points to now."""
    from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.hf_api import RepoFile
    from huggingface_hub.utils import filter_repo_objects

    api = HfApi(endpoint=endpoint())
    commits: dict[Source, str] = {}
    files: list[PlannedFile] = []
    with _online():
        for source in model.sources():
            with _explained(source):
                commit = api.resolve_revision(source.repo, revision=source.revision).resolved
                tree = {
                    entry.path: entry.size
                    for entry in api.list_repo_tree(source.repo, revision=commit, recursive=True)
                    if isinstance(entry, RepoFile)
                }
            commits[source] = commit
            for part in source.parts:
                matched = sorted(filter_repo_objects(tree, allow_patterns=list(part.patterns)))
                if not matched:
                    raise PullError(
                        f"{source.repo}@{source.revision} has no files for {part.label} (looked for "
                        f"{', '.join(part.patterns)}): the catalog entry no longer matches the repository."
                    )
                files.extend(PlannedFile(part, path, tree[path]) for path in matched)
            # A gated repository shows its listing to anyone: asking for one file's metadata reports a missing or
            # refused token now, before anything is downloaded.
            with _explained(source):
                get_hf_file_metadata(hf_hub_url(source.repo, files[-1].path, revision=commit, endpoint=endpoint()))
    return Plan(model, commits, tuple(files))


def pull(planned: Plan, target: Path) -> Path:
    """Fetch what `planned` lists into `target`; what is already there at the same commit is kept."""
    from huggingface_hub import snapshot_download

    target.mkdir(parents=True, exist_ok=True)
    with _online():
        for source, commit in planned.commits.items():
            with _explained(source):
                snapshot_download(
                    source.repo,
                    revision=commit,
                    allow_patterns=source.patterns,
                    local_dir=target,
                    endpoint=endpoint(),
                )
    missing = [part.label for part, held in local_parts(planned.model, target).items() if not held.present]
    if missing:
        raise PullError(f"{target} still lacks {', '.join(missing)} after the download.")
    _drop_absent_components(target)
    return target


def _drop_absent_components(directory: Path) -> None:
    """Repositories may list components in model_index.json that the fast path does not fetch (the prompt
    enhancer, its processor, the duration head: optional in LTX2Pipeline). They are marked absent the way diffusers
    saves an optional component that is None, or loading would look for their folders."""
    path = directory / "model_index.json"
    index = json.loads(path.read_text())
    absent = [
        name
        for name, value in index.items()
        if not name.startswith("_") and isinstance(value, list) and value[0] is not None
        and not (directory / name).is_dir()
    ]
    if absent:
        index.update({name: [None, None] for name in absent})
        path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def _local_files(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    # .cache/ holds huggingface_hub's records of what was fetched, not weights.
    return [
        path.relative_to(directory).as_posix()
        for path in directory.rglob("*")
        if path.is_file() and path.relative_to(directory).parts[0] != ".cache"
    ]


@dataclass(frozen=True)
class Held:
    """What a directory holds of one part."""

    present: bool
    size: int


def local_parts(model: CatalogModel, directory: Path) -> dict[Part, Held]:
    """Which of the model's parts `directory` holds: a part is present when files match it and every shard that a
    sharded checkpoint's index names is there."""
    from huggingface_hub.utils import filter_repo_objects

    files = _local_files(directory)
    held = {}
    for part in model.parts:
        matched = list(filter_repo_objects(files, allow_patterns=list(part.patterns)))
        present = bool(matched) and all(
            _shards_present(directory / path) for path in matched if path.endswith(".safetensors.index.json")
        )
        held[part] = Held(present, sum((directory / path).stat().st_size for path in matched))
    return held


def _shards_present(index: Path) -> bool:
    try:
        shards = set(json.loads(index.read_text())["weight_map"].values())
    except (OSError, ValueError, KeyError, AttributeError):
        return False
    return all((index.parent / shard).is_file() for shard in shards)
