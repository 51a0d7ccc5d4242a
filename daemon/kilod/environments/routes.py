"""HTTP routes of environments: caches, the images kilod built, disk and garbage collection.

The CLI (`kilod cache`, `kilod images list|prune`, `kilod ctl gc`, `kilod doctor`)
asks the daemon here, so it never loads the docker SDK. Errors are KilodErrors: the
app's middleware turns them into JSON with a status.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kilod.environments.attach import Environments
from kilod.environments.gc import Collector, tree_bytes
from kilod.errors import Invalid


class GcRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    idle_after: float | None = Field(None, ge=0, description="seconds without activity (default KILOD_GC_IDLE_AFTER)")


class EnvironmentRoutes:
    def __init__(self, environments: Environments, collector: Collector, worktrees: Path, idle_after: float) -> None:
        self.environments = environments
        self.collector = collector
        self.worktrees = worktrees
        self.idle_after = idle_after

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/caches", self.list_caches),
            web.delete("/v1/caches", self.clear_caches),
            web.get("/v1/images", self.list_images),
            web.delete("/v1/images", self.prune_images),
            web.post("/v1/gc", self.gc),
            web.get("/v1/disk", self.disk),
        ]

    async def list_caches(self, request: web.Request) -> web.Response:
        caches = await asyncio.to_thread(self.environments.caches.inventory)
        known = [c.size_bytes for c in caches if c.size_bytes is not None]
        return web.json_response({"caches": [asdict(c) for c in caches], "total_bytes": sum(known)})

    async def clear_caches(self, request: web.Request) -> web.Response:
        repo = request.query.get("repo")
        if repo is not None:
            if not repo.strip():
                raise Invalid("repo is empty; give a repository path or leave it out to clear every cache",
                              field="repo")
            repo = str(Path(repo).expanduser().resolve())
        removed, in_use = await asyncio.to_thread(self.environments.caches.clear, repo)
        return web.json_response({"removed": removed, "in_use": in_use})

    async def list_images(self, request: web.Request) -> web.Response:
        images = await asyncio.to_thread(self.environments.images.inventory)
        return web.json_response({"images": [asdict(i) for i in images]})

    async def prune_images(self, request: web.Request) -> web.Response:
        removed, in_use = await asyncio.to_thread(self.environments.images.prune)
        return web.json_response({"removed": removed, "in_use": in_use})

    async def gc(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise Invalid(f"malformed JSON: {exc}") from None
        if not isinstance(body, dict):
            raise Invalid("request body must be a JSON object")
        try:
            options = GcRequest.model_validate(body)
        except ValidationError as exc:
            raise Invalid("; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                                    for e in exc.errors())) from None
        idle = self.idle_after if options.idle_after is None else options.idle_after
        report = await self.collector.collect(idle)
        return web.json_response({**asdict(report), "idle_after": idle})

    async def disk(self, request: web.Request) -> web.Response:
        """Bytes kilod's own things hold: worktrees, cache volumes, the images it built."""
        worktrees = await asyncio.to_thread(tree_bytes, self.worktrees) if self.worktrees.is_dir() else 0
        caches = await asyncio.to_thread(self.environments.caches.inventory)
        images = await asyncio.to_thread(self.environments.images.inventory)
        return web.json_response({
            "worktrees_bytes": worktrees,
            "worktrees": sum(1 for _ in self.worktrees.iterdir()) if self.worktrees.is_dir() else 0,
            "caches_bytes": sum(c.size_bytes or 0 for c in caches),
            "caches": len(caches),
            "images_bytes": sum(i.size_bytes for i in images if i.kind == "repository"),
            "images": sum(1 for i in images if i.kind == "repository"),
            "base_images_bytes": sum(i.size_bytes for i in images if i.kind != "repository"),
        })
