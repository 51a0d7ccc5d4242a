"""Sandbox images a repository asks for: built once per content hash, labelled, reused.

A repository's Dockerfile and build context are taken from the card's base commit
(`git archive`, filters off), never from a worktree: the agent cannot change what
its own or a later attempt's image is built from, and untracked files never leak
into a build. The tag is a hash of the context's tree id, the Dockerfile's blob id
and the build args, so an unchanged recipe is never built twice and a re-created
container finds its image by recomputing the tag. Blocking: call from a thread.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors

from kilod.errors import KilodError, Unavailable
from kilod.git.paths import RepoPaths
from kilod.git.runner import SAFE_ENV, GitFailed, git_command, run_git
from kilod.git.worktree import filters_off

LABEL_ENV_IMAGE = "kilod.env-image"   # the content hash: an image kilod built for a repository
LABEL_REPO = "kilod.repo"
LABEL_INSTANCE = "kilod.instance"
LABEL_BASE_IMAGE = "kilod.image"      # images/build.sh's own images (sandbox, proxy, daemon)
REPOSITORY = "kilod-env"
DOCKERFILE_IN_CONTEXT = ".kilod.Dockerfile"
RECIPE_VERSION = "1"  # bump when how kilod builds changes, so old tags are not reused
TAIL_LINES = 30


class ImageBuildFailed(KilodError):
    """The repository's Dockerfile did not build; the message ends with the log's tail."""


@dataclass(frozen=True)
class Recipe:
    dockerfile: str
    context: str
    args: tuple[tuple[str, str], ...]


def recipe_of(card_settings: dict[str, Any]) -> Recipe | None:
    dockerfile = card_settings.get("dockerfile")
    if not dockerfile:
        return None
    context = card_settings.get("context") or str(Path(str(dockerfile)).parent)
    args = card_settings.get("args") or {}
    return Recipe(str(dockerfile), str(context), tuple(sorted((str(k), str(v)) for k, v in args.items())))


def tag_for(repo: RepoPaths, base_commit: str, recipe: Recipe) -> str:
    """`kilod-env:<hash>` of what the build reads; Invalid-like errors name the missing path."""
    def object_id(path: str, kind: str) -> str:
        try:
            found = run_git("rev-parse", "--verify", "--quiet", _spec(base_commit, path),
                            git_dir=repo.common_dir).strip()
            if run_git("cat-file", "-t", found, git_dir=repo.common_dir).strip() != kind:
                raise GitFailed(1, f"not a {kind}", ("cat-file",))
        except GitFailed:
            what = "folder" if kind == "tree" else "file"
            raise ImageBuildFailed(f"the {what} '{path}' is not in the base commit {base_commit[:12]}; "
                                   "kilod builds from committed files") from None
        return found

    tree = object_id(recipe.context, "tree")
    blob = object_id(recipe.dockerfile, "blob")
    digest = hashlib.sha256(json.dumps([RECIPE_VERSION, tree, blob, recipe.args]).encode()).hexdigest()
    return f"{REPOSITORY}:{digest[:20]}"


def _spec(commit: str, path: str) -> str:
    """`commit:path`, or the commit's root tree for '.' (`commit:` alone is not a tree to rev-parse)."""
    clean = path.strip("/")
    return f"{commit}^{{tree}}" if clean in ("", ".") else f"{commit}:{clean}"


@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: list[str]
    kind: str          # "repository" (built for a repository) or the build.sh image name
    repo: str
    size_bytes: int
    created: str


class Images:
    def __init__(self, client: docker.DockerClient, instance: str) -> None:
        self.client = client
        self.instance = instance
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def present(self, image: str) -> bool:
        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound:
            return False
        return True

    def ensure_named(self, image: str, log: Callable[[str], None]) -> None:
        """A repository's `image = "…"`: present, or pulled; a clear error where there is no registry."""
        if self.present(image):
            return
        log(f"pulling {image}")
        try:
            self.client.images.pull(image)
        except docker.errors.APIError as exc:
            raise ImageBuildFailed(f"the image '{image}' is not present and cannot be pulled: "
                                   f"{exc.explanation or exc}") from None

    def ensure_built(self, repo: RepoPaths, base_commit: str, recipe: Recipe, log: Callable[[str], None]) -> str:
        """The tag of the repository's image, building it unless an identical one exists (one build per tag)."""
        tag = tag_for(repo, base_commit, recipe)
        with self._guard:
            lock = self._locks.setdefault(tag, threading.Lock())
        with lock:  # a second attempt of the same recipe waits for the first build, then reuses it
            if self.present(tag):
                log(f"reusing image {tag} (built before from the same Dockerfile, context and args)")
                return tag
            log(f"building image {tag} from {recipe.dockerfile} (context {recipe.context})")
            with tempfile.TemporaryFile() as context:
                self._context(repo, base_commit, recipe, context)
                context.seek(0)
                self._build(context, tag, recipe, str(repo.path), log)
        return tag

    def _context(self, repo: RepoPaths, base_commit: str, recipe: Recipe, out: IO[bytes]) -> None:
        """The context tree of the base commit as a tar, with the Dockerfile added under a fixed name."""
        tree = _spec(base_commit, recipe.context)
        config = filters_off(repo)
        archive = subprocess.run(git_command("archive", "--format=tar", tree, git_dir=repo.common_dir, config=config),
                                 capture_output=True, env={**SAFE_ENV, "PATH": "/usr/bin:/bin:/usr/local/bin"})
        if archive.returncode != 0:
            raise ImageBuildFailed(f"cannot read the build context {recipe.context}: "
                                   f"{archive.stderr.decode(errors='replace').strip()}")
        dockerfile = subprocess.run(git_command("cat-file", "blob", f"{base_commit}:{recipe.dockerfile}",
                                                git_dir=repo.common_dir), capture_output=True)
        if dockerfile.returncode != 0:
            raise ImageBuildFailed(f"cannot read {recipe.dockerfile} at the base commit")
        with tarfile.open(fileobj=io.BytesIO(archive.stdout), mode="r:") as source, \
                tarfile.open(fileobj=out, mode="w:") as target:
            for member in source:
                if member.name.lstrip("./") == DOCKERFILE_IN_CONTEXT:
                    continue
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
            info = tarfile.TarInfo(DOCKERFILE_IN_CONTEXT)
            info.size = len(dockerfile.stdout)
            info.mode = 0o644
            target.addfile(info, io.BytesIO(dockerfile.stdout))

    def _build(self, context: IO[bytes], tag: str, recipe: Recipe, repo: str, log: Callable[[str], None]) -> None:
        tail: list[str] = []
        labels = {LABEL_ENV_IMAGE: tag.split(":", 1)[1], LABEL_REPO: repo, LABEL_INSTANCE: self.instance}
        try:
            stream = self.client.api.build(fileobj=context, custom_context=True, dockerfile=DOCKERFILE_IN_CONTEXT,
                                           tag=tag, labels=labels, buildargs=dict(recipe.args), rm=True,
                                           forcerm=True, pull=False, decode=True)
            for chunk in stream:
                text = str(chunk.get("stream") or chunk.get("status") or "")
                if chunk.get("error"):
                    tail.append(str(chunk["error"]).rstrip())
                    log(str(chunk["error"]).rstrip())
                    raise ImageBuildFailed(f"building {recipe.dockerfile} failed: {str(chunk['error']).strip()}\n"
                                           + "\n".join(tail[-TAIL_LINES:]))
                for line in text.splitlines():
                    if line.strip():
                        tail.append(line)
                        log(line)
                del tail[:-TAIL_LINES]
        except docker.errors.APIError as exc:
            raise ImageBuildFailed(f"building {recipe.dockerfile} failed: {exc.explanation or exc}\n"
                                   + "\n".join(tail[-TAIL_LINES:])) from None
        if not self.present(tag):
            raise ImageBuildFailed(f"building {recipe.dockerfile} produced no image\n" + "\n".join(tail))

    def inventory(self) -> list[ImageInfo]:
        """Images kilod built: the repositories' (this daemon's) and images/build.sh's."""
        found: dict[str, ImageInfo] = {}
        for image in self.client.images.list(filters={"label": f"{LABEL_INSTANCE}={self.instance}"}):
            labels = image.labels or {}
            if LABEL_ENV_IMAGE in labels:
                found[str(image.id)] = self._info(image, "repository", labels.get(LABEL_REPO, ""))
        for image in self.client.images.list(filters={"label": LABEL_BASE_IMAGE}):
            found.setdefault(str(image.id), self._info(image, (image.labels or {}).get(LABEL_BASE_IMAGE, ""), ""))
        return sorted(found.values(), key=lambda i: (i.kind, i.repo, i.created))

    @staticmethod
    def _info(image: Any, kind: str, repo: str) -> ImageInfo:
        return ImageInfo(id=str(image.id), tags=list(image.tags), kind=kind, repo=repo,
                         size_bytes=int(image.attrs.get("Size") or 0), created=str(image.attrs.get("Created", "")))

    def prune(self) -> tuple[list[str], list[str]]:
        """Remove the repository images no container uses; images/build.sh's are never touched."""
        removed, in_use = [], []
        for info in self.inventory():
            if info.kind != "repository":
                continue
            name = info.tags[0] if info.tags else info.id
            try:
                self.client.images.remove(info.id)
            except docker.errors.ImageNotFound:
                continue
            except docker.errors.APIError as exc:
                if exc.status_code == 409:
                    in_use.append(name)
                    continue
                raise Unavailable(f"cannot remove {name}: {exc.explanation or exc}") from exc
            removed.append(name)
        return removed, in_use
