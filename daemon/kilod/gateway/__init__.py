"""The model gateway: agent CLIs in sandboxes reach models through kilod, with no key inside.

Agents speak their own wire format to `http://127.0.0.1:PORT` in their container (a forwarder
bridges that to the attempt's unix socket); the gateway checks the attempt's token, pins the
attempt's model, forwards through litellm with the daemon's keys and settings, and meters
every call on the attempt exactly as the built-in agent's calls are metered.

Routes (each streaming with `"stream": true`, as server-sent events passed on as they arrive):

    POST /v1/messages               Anthropic Messages          (Claude Code)
    POST /v1/messages/count_tokens  Anthropic token count       (not a model call: not metered)
    POST /v1/chat/completions       OpenAI Chat Completions     (aider, mini-swe-agent)
    POST /v1/responses              OpenAI Responses            (Codex: wire_api = "responses")
    GET  /v1/models                 the attempt's one model

API for the rest of the daemon (the agents lane's adapters and the pipeline):

    gateway = Gateway(store, events, models, data_dir, timeout, model_map=…, metrics=…)
    gateway.on_budget_spent = hook            # hook(attempt_id, reason): stop the agent, go to Review
    token = gateway.issue(attempt_id, agent)  # agent: "claude-code", "codex", "aider", "mini-swe-agent", …
                                              # a new random token each call; only its sha256 is stored
    path = await gateway.listen(attempt_id, owner=(uid, gid))
                                              # serves <data_dir>/gateway/<attempt_id>/model.sock (0600);
                                              # bind-mount its DIRECTORY, so the socket re-created after a
                                              # daemon restart is seen in the container; call listen again
                                              # when re-attaching to a running agent after a restart
    await gateway.close(attempt_id)           # stop serving that socket (when the agent run ends)
    gateway.revoke(attempt_id)                # the token stops working at once
    await gateway.settled(attempt_id)         # every call answered so far is counted (a call is counted
                                              # right after its answer is sent: the fsync is not the agent's wait)
    await gateway.aclose()                    # daemon shutdown: close all sockets
    gateway.app(None)                         # an aiohttp app where the token alone names the attempt
                                              # (for a TCP listener, e.g. Docker-in-Docker)

Agent environment (set by the adapter; the token is the only credential inside):
    Claude Code  ANTHROPIC_BASE_URL=http://127.0.0.1:PORT  ANTHROPIC_AUTH_TOKEN=<token>
    Codex        [model_providers.kilod] base_url="http://127.0.0.1:PORT/v1" env_key=<var> wire_api="responses"
    aider, mini-swe-agent (litellm inside)  model "openai/<any>"  OPENAI_API_BASE=http://127.0.0.1:PORT/v1
                                            OPENAI_API_KEY=<token>
The token is accepted as `x-api-key` or `Authorization: Bearer`. A token is valid while its
attempt is starting, running (or paused) and only on that attempt's own socket; otherwise
401 in the wire format's error shape, and no provider is reached.

Model pinning: whatever model the agent names, the call goes to the attempt's model, unless the
name is a key of `model_map` (setting `gateway_models`, e.g. {"claude-haiku-4-5": "openai/gpt-4o-mini"}
for an agent's small/fast model), which sends it to the mapped model instead.

Metering: each call adds 1 to the attempt's `steps` and its tokens (cached ones included in
`tokens_in`; cache reads/writes in the log event and in `kilod_model_tokens_total{direction=…}`)
and litellm's cost to the attempt, with a `log` event (`source: "gateway"`). Metrics
`kilod_model_*` carry `agent` (builtin, claude-code, codex, aider, mini-swe-agent, other).
Counting happens right after the answer is sent (through the store's group commit), and an
attempt's next call waits for its earlier ones to be counted before its budget check; so a
budget is never judged on stale counts, and only a `kill -9` in the instant between an answer
and its commit can lose that one call's count (as for a stream, whose last event precedes it).
Budget: once the card's token or cost budget is spent, calls get 400 (not retried by agents)
with the reason, the attempt's `stop_reason` is set and `on_budget_spent` is called once per run.
Errors: see kilod.gateway.errors (429/5xx/529 that agents retry vs 4xx where retrying cannot help).
"""

from kilod.gateway.server import Gateway

__all__ = ["Gateway"]
