"""mini-swe-agent: `mini -t … --yolo --exit-immediately`, through the gateway's OpenAI Chat endpoint.

Like aider it runs litellm inside (an `openai/…` model, OPENAI_API_BASE at the
forwarder). It has no session to resume: a follow-up is a new task whose prompt kilod
composed (comments, what a person changed). Its trajectory goes to the state dir.
Its console output is text: each line a log event.
"""

from __future__ import annotations

from kilod.agents.base import HOME, AgentEvent, Launch, Outcome, Request, base_env, clip, raw_log
from kilod.agents.catalog import CATALOG


class MiniSweAgent:
    name = "mini-swe-agent"

    def session_for(self, attempt_id: str) -> str | None:
        return None

    def launch(self, request: Request) -> Launch:
        argv = [CATALOG[self.name].executable(), "-t", request.prompt, "--yolo", "--exit-immediately",
                "-m", "openai/kilod", "--cost-limit", "0", "-o", f"{HOME}/trajectory-{request.run}.json"]
        env = {**base_env(request), "OPENAI_API_BASE": request.base_url + "/v1", "OPENAI_API_KEY": request.token,
               "MSWEA_CONFIGURED": "true", "MSWEA_COST_TRACKING": "ignore_errors",
               "MSWEA_GLOBAL_CONFIG_DIR": f"{HOME}/.config/mini-swe-agent", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        return Launch(argv=argv, env=env)

    def parse(self, line: str, outcome: Outcome) -> list[AgentEvent]:
        text = line.rstrip()
        if not text.strip():
            return []
        outcome.finished = True
        outcome.summary = clip(text, 2000)
        return [raw_log(text)]
