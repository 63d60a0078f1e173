#include "llm_txt.h"

namespace sandboxd::control {

namespace {

constexpr std::string_view kText = R"(# sandboxd

sandboxd runs one isolated development sandbox (a Docker container with a coding agent) per
project and serves each sandbox's dev server on its own preview host.

## Calling the API

- Base: the control listener (default http://127.0.0.1:9090). JSON in and out.
- Auth: `Authorization: Bearer <token>`. Read-only tokens may only GET. A token bound to a
  user sees and acts on that user's sandboxes only.
- Errors (v1): `{"error":{"code","message","retryable"}}`. 400 invalid_request, 401,
  403 forbidden, 404 not_found, 409 conflict, 413, 429, 503 sandbox_capacity (retry after
  the Retry-After seconds), 504.
- Ids are ULIDs (26 characters). Times are RFC 3339 UTC.

## Sandboxes

- POST /v1/sandboxes  {"project":{"id","user_id"},"ports":[3000],"visibility":"public"|"private",
  "idle_policy":"sleep"|"always_on","env":{},"template":"name"}  → 201 sandbox (wait=false: 202)
- GET /v1/sandboxes?user_id=&project_id=&status=&limit=&cursor=  → {"sandboxes","next_cursor"}
- GET /v1/sandboxes/{id}, PATCH /v1/sandboxes/{id} (merge patch of visibility, idle_policy,
  ports, git_remote_url, keepalive_until), DELETE /v1/sandboxes/{id}
- POST /v1/sandboxes/{id}/start, /stop  (?wait=false answers 202; start?port=3000 answers once
  that port accepts connections, 504 after wake.timeout)
- POST /v1/sandboxes/{id}/exec  {"cmd":["sh","-c","..."],"timeout_s":60,"stream":false,
  "detach":false}  → {"stdout","stderr","exit_code",…}; stream=true gives NDJSON frames
- GET /v1/sandboxes/{id}/logs?source=container|dev_server&tail=200&follow=true
- States: creating, running, stopping, stopped, waking, error, destroyed, purged. A stopped
  sandbox wakes by itself when its preview URL is requested, when a task is submitted, or on
  start/exec.

## Previews

- Each declared port is served at http(s)://s-<id>-<port>.<preview suffix>/ with WebSockets.
- Private sandboxes need a preview token: POST /v1/sandboxes/{id}/preview-token
  {"port":3000,"ttl_s":3600} → {"token","expires_at","url"}; open `url` in a browser, or send
  the token as a bearer header.

## Tasks (a coding agent or a command inside the sandbox)

- POST /v1/sandboxes/{id}/tasks  {"agent":"opencode"|"claude-code","prompt":"..."} or
  {"agent":"command","command":["npm","test"]}  → 202 task
- GET /v1/sandboxes/{id}/tasks, GET /v1/sandboxes/{id}/tasks/{taskId}
- GET /v1/sandboxes/{id}/tasks/{taskId}/events  Server-Sent Events (started, stdout, stderr,
  message, tool, file, exit, error, done); resume with Last-Event-ID.
- POST /v1/sandboxes/{id}/tasks/{taskId}/cancel

## Files (paths relative to the workspace; symlinks are never followed)

- GET /v1/sandboxes/{id}/files?path=src&recursive=true  (a directory listing)
- GET /v1/sandboxes/{id}/files/content?path=src/App.tsx
- PUT /v1/sandboxes/{id}/files?path=src/App.tsx  (raw body; &mode=append appends)
- GET /v1/sandboxes/{id}/export  (a tar of the workspace; &gzip=true)

## Events and operations

- GET /v1/events?sandbox_id=&user_id=  Server-Sent Events: sandbox.state {from,to,reason,at}
  and task.state {task_id,status,at}; resume with Last-Event-ID, `resync` means list again.
- GET /v1/audit, GET /v1/certificates, GET /metrics (operator tokens), GET /healthz, GET /readyz
)";

}  // namespace

std::string_view llm_txt() { return kText; }

}  // namespace sandboxd::control
