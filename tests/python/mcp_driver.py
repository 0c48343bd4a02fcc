#!/usr/bin/env python3
"""Drive an MCP server with the official Python MCP SDK and report what happened as JSON.

This is the test harness's "real third-party client": the Rust tests hand it a JSON *plan*
(which server to reach and which MCP operations to perform, in order) and read back exactly
one JSON *result* object on stdout. It owns nothing but its own MCP connection; it must not
assert anything (the Rust tests do), and it must not let an error escape as a bare traceback:
every failure (bad plan, failed connect, failed step, watchdog expiry) is reported inside the
result JSON, with the traceback as a field.

Usage:
    mcp_driver.py                    # plan JSON on stdin
    mcp_driver.py '<plan json>'      # plan JSON as the first argument
    mcp_driver.py --plan-file PATH   # plan JSON in a file

Exit status: 0 when every step met its expectation, 1 when the result records a failure,
2 when the plan itself is invalid. In all three cases stdout holds one JSON object.

Plan (every key except "transport" is optional):
    {
      "transport": {"type": "stdio", "command": "/path/to/domshell", "args": ["mcp"],
                    "env": {"K": "V"}, "cwd": null, "inherit_env": false}
                 | {"type": "http", "url": "http://127.0.0.1:PORT/mcp",
                    "headers": {"Authorization": "Bearer TOKEN"}, "terminate_on_close": true},
      "protocol": "legacy" | "auto" | "modern",   # default "legacy", see PROTOCOLS below
      "client_info": {"name": "...", "version": "..."},
      "log_level": null | "debug" | ...,          # 2026-07-28 per-request log opt-in
      "read_timeout_ms": null | 30000,            # default per-request timeout
      "timeout_ms": 60000,                        # watchdog over the whole plan
      "stop_on_error": false,                     # skip the remaining steps after a failure
      "verbose": false,                           # SDK debug logging on stderr
      "steps": [
        {"op": "initialize"},                     # added in front when the plan has none
        {"op": "list_tools"},
        {"op": "call_tool", "name": "echo", "arguments": {"text": "hi"},
         "timeout_ms": 5000, "progress": true, "cancel_after_ms": 200, "label": "first"},
        {"op": "set_logging_level", "level": "debug"},
        {"op": "ping"},
        {"op": "list_resources"}, {"op": "list_prompts"},
        {"op": "sleep", "ms": 100},
        {"op": "barrier", "dir": "/tmp/x", "name": "seen", "count": 10, "timeout_ms": 30000},
                                                  # touch dir/name.<pid>, then wait until
                                                  # `count` files name.* exist there: lines
                                                  # up several drivers (and the test) at a point
        {"op": "parallel", "steps": [ ...steps run concurrently... ]}
      ]
    }
    Any step may carry "expect_error": true (the step is "ok" only if it raised: a JSON-RPC
    error, a timeout, a transport failure; a tool result with isError is not an exception) and
    "label" (echoed in its result, handy for finding it again). `t_ms`/`started_ms` count
    from the driver's start (which includes the SDK's ~1 s import time).

Result:
    {
      "ok": true, "exit_code": 0,
      "driver": {"sdk_version": "2.3.0", "python": "3.11.7"},
      "transport": "stdio", "protocol": "legacy",
      "protocol_version": "2025-11-25", "server_info": {"name": ..., "version": ...},
      "server_capabilities": {...}, "instructions": "...", "instructions_length": 123,
      "tools": [...],                   # from the last list_tools step
      "steps": [{"index": 0, "op": "initialize", "ok": true, "started_ms": 3.1,
                 "elapsed_ms": 40.2, "error": null, ...op-specific fields...}, ...],
        # initialize: protocol_version, era ("handshake" | "stateless")
        # list_tools: tools (as the server sent them), tool_names, pages
        # call_tool:  name, is_error, content, structured_content, text (text blocks joined),
        #             meta, cancelled, progress ([{progress, total, message, t_ms}], when
        #             "progress": true; t_ms counted from the call's start)
        # parallel:   results (the sub-steps' records)
        # error:      {"type", "message", "code"?, "data"?, "traceback"}; a cancelled or
        #             interrupted step has type "Interrupted"
      "logs": [{"level": "info", "logger": null, "data": "...", "t_ms": 51.0}],
      "notifications": [{"method": "notifications/message", "params": {...}, "t_ms": 51.0}],
      "http": [{"method": "POST", "status": 200, "content_type": "...", "session_id": ...,
                "request_protocol_version": ..., "request_session_id": ...,
                "request_mcp_method": ..., "t_ms": ...}],   # http transport only
      "error": null | {"type": ..., "message": ..., "code": ..., "data": ..., "traceback": ...},
      "shutdown_error": null | {...},   # failure while closing the connection
      "server_stderr": "..." | null,    # stdio only: what the server wrote to stderr
      "timings": {"connect_ms": 12.0, "steps_ms": 80.0, "total_ms": 100.0}
    }

PROTOCOLS (what the SDK 2.3.0 can negotiate):
    "legacy": ClientSession.initialize(): the initialize handshake offering 2025-11-25
              (HTTP sessions with Mcp-Session-Id when the server issues one).
    "auto":   the SDK's default `Client(mode="auto")` policy: probe `server/discover` at
              2026-07-28, fall back to the initialize handshake on a legacy server.
    "modern": ClientSession.discover() only: 2026-07-28 stateless, per-request `_meta`
              envelope, no session, no initialize; fails on a legacy-only server.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from contextlib import AsyncExitStack
from typing import Any

# Everything that could fail to import is imported inside main(), so a broken venv is still
# reported as JSON rather than as a bare ImportError traceback.

DEFAULT_TIMEOUT_MS = 60_000
STDERR_TAIL_BYTES = 64 * 1024
PROTOCOLS = ("legacy", "auto", "modern")
STEP_OPS = (
    "initialize",
    "list_tools",
    "call_tool",
    "set_logging_level",
    "ping",
    "list_resources",
    "list_prompts",
    "sleep",
    "barrier",
    "parallel",
)

_T0 = time.monotonic()


def now_ms() -> float:
    """Milliseconds since the driver started (the time base of every `t_ms`/`started_ms`)."""
    return round((time.monotonic() - _T0) * 1000.0, 3)


class PlanError(ValueError):
    """The plan is malformed: reported with exit status 2."""


# ---------------------------------------------------------------------------------------------
# JSON helpers
# ---------------------------------------------------------------------------------------------


def to_json(value: Any) -> Any:
    """Best-effort conversion of SDK objects (pydantic models, exceptions, ...) to JSON values."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump(by_alias=True, mode="json", exclude_none=True)
        except Exception:  # a model that cannot dump itself still gets reported
            return repr(value)
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_json(v) for v in value]
    return repr(value)


def leaf_exceptions(exc: BaseException) -> list[BaseException]:
    """The real failures inside (possibly nested) exception groups raised by anyio task groups."""
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, (list, tuple)) and inner:
        leaves: list[BaseException] = []
        for sub in inner:
            leaves.extend(leaf_exceptions(sub))
        return leaves
    return [exc]


def describe_error(exc: BaseException) -> dict[str, Any]:
    """A JSON description of `exc`: type, message, MCP error code/data when it has them."""
    leaves = leaf_exceptions(exc)
    first = leaves[0]
    info: dict[str, Any] = {
        "type": type(first).__name__,
        "message": str(first) or repr(first),
    }
    # MCPError carries the JSON-RPC error object; keep its code and data for assertions.
    error_data = getattr(first, "error", None)
    code = getattr(error_data, "code", None)
    if isinstance(code, int):
        info["code"] = code
        info["message"] = getattr(error_data, "message", info["message"])
        data = getattr(error_data, "data", None)
        if data is not None:
            info["data"] = to_json(data)
    if len(leaves) > 1:
        info["causes"] = [f"{type(e).__name__}: {e}" for e in leaves[1:]]
    info["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return info


# ---------------------------------------------------------------------------------------------
# Plan parsing
# ---------------------------------------------------------------------------------------------


def read_plan(argv: list[str]) -> dict[str, Any]:
    if len(argv) >= 2 and argv[0] == "--plan-file":
        with open(argv[1], encoding="utf-8") as f:
            text = f.read()
    elif argv:
        text = argv[0]
    else:
        text = sys.stdin.read()
    try:
        plan = json.loads(text)
    except json.JSONDecodeError as e:
        raise PlanError(f"the plan is not valid JSON: {e}") from None
    if not isinstance(plan, dict):
        raise PlanError("the plan must be a JSON object")
    return plan


def validate_step(step: Any, where: str) -> None:
    if not isinstance(step, dict) or step.get("op") not in STEP_OPS:
        raise PlanError(f"{where}: each step needs an \"op\" among {', '.join(STEP_OPS)}; got {step!r}")
    op = step["op"]
    if op == "call_tool" and not isinstance(step.get("name"), str):
        raise PlanError(f"{where}: call_tool needs a string \"name\"")
    if op == "call_tool" and not isinstance(step.get("arguments", {}), dict):
        raise PlanError(f"{where}: call_tool \"arguments\" must be an object")
    if op == "set_logging_level" and not isinstance(step.get("level"), str):
        raise PlanError(f"{where}: set_logging_level needs a string \"level\"")
    if op == "sleep" and not isinstance(step.get("ms"), (int, float)):
        raise PlanError(f"{where}: sleep needs a number \"ms\"")
    if op == "barrier" and not (
        isinstance(step.get("dir"), str)
        and isinstance(step.get("name"), str)
        and isinstance(step.get("count"), int)
    ):
        raise PlanError(f"{where}: barrier needs a string \"dir\", a string \"name\" and an int \"count\"")
    if op == "parallel":
        subs = step.get("steps")
        if not isinstance(subs, list) or not subs:
            raise PlanError(f"{where}: parallel needs a non-empty \"steps\" list")
        for i, sub in enumerate(subs):
            validate_step(sub, f"{where}.steps[{i}]")
            if sub["op"] in ("initialize", "parallel"):
                raise PlanError(f"{where}.steps[{i}]: {sub['op']} cannot run inside parallel")


def validate_plan(plan: dict[str, Any]) -> None:
    transport = plan.get("transport")
    if not isinstance(transport, dict) or transport.get("type") not in ("stdio", "http"):
        raise PlanError('"transport" must be an object with "type": "stdio" or "http"')
    if transport["type"] == "stdio" and not isinstance(transport.get("command"), str):
        raise PlanError('a stdio transport needs a string "command"')
    if transport["type"] == "http" and not isinstance(transport.get("url"), str):
        raise PlanError('an http transport needs a string "url"')
    for key in ("env", "headers"):
        value = transport.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise PlanError(f'transport "{key}" must map names to strings')
    if plan.get("protocol", "legacy") not in PROTOCOLS:
        raise PlanError(f'"protocol" must be one of {", ".join(PROTOCOLS)}')
    steps = plan.get("steps", [])
    if not isinstance(steps, list):
        raise PlanError('"steps" must be a list')
    for i, step in enumerate(steps):
        validate_step(step, f"steps[{i}]")
    if sum(1 for s in steps if s["op"] == "initialize") > 1:
        raise PlanError("at most one initialize step")


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


class Driver:
    """One plan's run: the connection, the recorded notifications and the step results."""

    def __init__(self, plan: dict[str, Any], result: dict[str, Any]) -> None:
        self.plan = plan
        self.result = result
        self.session: Any = None
        self.logs: list[dict[str, Any]] = result["logs"]
        self.notifications: list[dict[str, Any]] = result["notifications"]

    # -- callbacks the SDK invokes -------------------------------------------------------------

    async def on_log(self, params: Any) -> None:
        self.logs.append(
            {
                "level": getattr(params, "level", None),
                "logger": getattr(params, "logger", None),
                "data": to_json(getattr(params, "data", None)),
                "t_ms": now_ms(),
            }
        )

    async def on_message(self, message: Any) -> None:
        # Server notifications (log messages included: the SDK tees them here after the
        # logging callback) and transport-level exceptions. Progress for a pending request and
        # notifications/cancelled are consumed by the SDK's dispatcher and never reach here;
        # progress is recorded per call instead.
        if isinstance(message, BaseException):
            self.notifications.append(
                {"transport_error": f"{type(message).__name__}: {message}", "t_ms": now_ms()}
            )
            return
        self.notifications.append(
            {
                "method": getattr(message, "method", type(message).__name__),
                "params": to_json(getattr(message, "params", None)),
                "t_ms": now_ms(),
            }
        )

    async def on_http_response(self, response: Any) -> None:
        request = response.request
        self.result["http"].append(
            {
                "method": request.method,
                "status": response.status_code,
                "content_type": response.headers.get("content-type"),
                "session_id": response.headers.get("mcp-session-id"),
                "request_protocol_version": request.headers.get("mcp-protocol-version"),
                "request_session_id": request.headers.get("mcp-session-id"),
                "request_mcp_method": request.headers.get("mcp-method"),
                "t_ms": now_ms(),
            }
        )

    def collect_server_stderr(self) -> None:
        """Copy the tail of a stdio server's stderr into the result (best effort)."""
        stderr_file = getattr(self, "stderr_file", None)
        if stderr_file is None:
            return
        try:
            stderr_file.flush()
            size = stderr_file.seek(0, os.SEEK_END)
            stderr_file.seek(max(0, size - STDERR_TAIL_BYTES))
            self.result["server_stderr"] = stderr_file.read()
        except Exception as exc:
            self.result["server_stderr"] = f"<could not read the server's stderr: {exc}>"
        finally:
            stderr_file.close()

    # -- connection ----------------------------------------------------------------------------

    async def connect(self, stack: AsyncExitStack) -> None:
        import mcp_types as types
        from mcp.client.session import ClientSession
        from mcp.client.stdio import StdioServerParameters, stdio_client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        transport = self.plan["transport"]
        if transport["type"] == "stdio":
            env = dict(transport.get("env", {}))
            if transport.get("inherit_env", False):
                # The SDK passes only HOME/PATH/USER/... by default, like desktop MCP hosts do.
                env = {**os.environ, **env}
            params = StdioServerParameters(
                command=transport["command"],
                args=list(transport.get("args", [])),
                env=env or None,
                cwd=transport.get("cwd"),
            )
            # The server's stderr goes to a real file (the SDK hands it to the subprocess as
            # its stderr fd) and is read back into the result after the connection closes.
            self.stderr_file = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
            read, write = await stack.enter_async_context(stdio_client(params, errlog=self.stderr_file))
        else:
            # Custom headers (e.g. Authorization: Bearer ...) go on the httpx2 client; the SDK
            # layers its own MCP headers (Mcp-Session-Id, MCP-Protocol-Version, ...) on top.
            http_client = create_mcp_http_client(headers=dict(transport.get("headers", {})))
            # The SDK folds HTTP failures into generic JSON-RPC errors (a 401 becomes -32603
            # "Server returned an error response"), so every exchange's status is recorded too.
            http_client.event_hooks = {"response": [self.on_http_response]}
            await stack.enter_async_context(http_client)
            read, write = await stack.enter_async_context(
                streamable_http_client(
                    transport["url"],
                    http_client=http_client,
                    terminate_on_close=bool(transport.get("terminate_on_close", True)),
                )
            )

        info = self.plan.get("client_info") or {}
        client_info = types.Implementation(
            name=info.get("name", "domshell-tests-python-driver"),
            version=info.get("version", self.result["driver"]["sdk_version"]),
        )
        read_timeout_ms = self.plan.get("read_timeout_ms")
        self.session = await stack.enter_async_context(
            ClientSession(
                read,
                write,
                read_timeout_seconds=None if read_timeout_ms is None else read_timeout_ms / 1000.0,
                logging_callback=self.on_log,
                message_handler=self.on_message,
                client_info=client_info,
                log_level=self.plan.get("log_level"),
            )
        )

    # -- steps ---------------------------------------------------------------------------------

    async def run_steps(self, steps: list[dict[str, Any]], out: list[dict[str, Any]]) -> None:
        stop_on_error = bool(self.plan.get("stop_on_error", False))
        for index, step in enumerate(steps):
            record = self.new_record(index, step, out)
            await self.run_step(step, record)
            if not record["ok"] and stop_on_error:
                for skipped in range(index + 1, len(steps)):
                    self.new_record(skipped, steps[skipped], out)["skipped"] = True
                return

    @staticmethod
    def new_record(index: int, step: dict[str, Any], out: list[dict[str, Any]]) -> dict[str, Any]:
        """A step's result record, appended to `out` before the step runs so that a step
        interrupted by the watchdog or a dying transport still appears in the result."""
        record: dict[str, Any] = {"index": index, "op": step["op"], "ok": False, "error": None}
        if "label" in step:
            record["label"] = step["label"]
        out.append(record)
        return record

    async def run_step(self, step: dict[str, Any], record: dict[str, Any]) -> None:
        import anyio

        started = time.monotonic()
        record["started_ms"] = now_ms()
        failed = False
        try:
            handler = getattr(self, "step_" + step["op"])
            await handler(step, record)
        except anyio.get_cancelled_exc_class():
            # Not the step's own doing: the watchdog fired or the transport's task group
            # failed (e.g. connection refused) and is unwinding. Record and keep unwinding;
            # the real cause is reported as the plan's error.
            record["error"] = {
                "type": "Interrupted",
                "message": "the step was interrupted (plan timeout or transport failure)",
            }
            record["elapsed_ms"] = round((time.monotonic() - started) * 1000.0, 3)
            raise
        except Exception as exc:  # every step failure is data for the test, not a crash
            failed = True
            record["error"] = describe_error(exc)
        record["elapsed_ms"] = round((time.monotonic() - started) * 1000.0, 3)
        expect_error = bool(step.get("expect_error", False))
        record["ok"] = failed if expect_error else not failed

    async def step_initialize(self, step: dict[str, Any], record: dict[str, Any]) -> None:
        protocol = self.plan.get("protocol", "legacy")
        if protocol == "legacy":
            await self.session.initialize()
        elif protocol == "auto":
            # The SDK's own connect-time policy for Client(mode="auto"); private module, but
            # it is exactly what `mcp.Client` runs, and 2.3.0 is pinned.
            from mcp.client._probe import negotiate_auto

            await negotiate_auto(self.session)
        else:
            await self.session.discover()
        session = self.session
        self.result["protocol_version"] = session.protocol_version
        self.result["server_info"] = to_json(session.server_info)
        self.result["server_capabilities"] = to_json(session.server_capabilities)
        self.result["instructions"] = session.instructions
        self.result["instructions_length"] = len(session.instructions or "")
        record["protocol_version"] = session.protocol_version
        record["era"] = "handshake" if session.initialize_result is not None else "stateless"

    async def step_list_tools(self, step: dict[str, Any], record: dict[str, Any]) -> None:
        import mcp_types as types

        tools: list[Any] = []
        cursor = None
        pages = 0
        # Follow pagination, bounded so a server that never ends its cursor chain cannot hang us.
        while pages < 100:
            params = None if cursor is None else types.PaginatedRequestParams(cursor=cursor)
            page = await self.session.list_tools(params=params)
            pages += 1
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        record["pages"] = pages
        record["tools"] = [to_json(t) for t in tools]
        record["tool_names"] = [t.name for t in tools]
        self.result["tools"] = record["tools"]

    async def step_call_tool(self, step: dict[str, Any], record: dict[str, Any]) -> None:
        import anyio

        record["name"] = step["name"]
        progress: list[dict[str, Any]] = []
        call_started = time.monotonic()

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(
                {
                    "progress": value,
                    "total": total,
                    "message": message,
                    "t_ms": round((time.monotonic() - call_started) * 1000.0, 3),
                }
            )

        timeout_ms = step.get("timeout_ms")
        cancel_after_ms = step.get("cancel_after_ms")
        want_progress = bool(step.get("progress", False))
        if want_progress:
            record["progress"] = progress

        async def call() -> Any:
            return await self.session.call_tool(
                step["name"],
                step.get("arguments", {}),
                read_timeout_seconds=None if timeout_ms is None else timeout_ms / 1000.0,
                # Passing a callback is what makes the SDK attach _meta.progressToken.
                progress_callback=on_progress if want_progress else None,
            )

        result = None
        record["cancelled"] = False
        if cancel_after_ms is None:
            result = await call()
        else:
            # Abandoning the request from the caller's side is how an SDK user cancels: the
            # SDK then sends notifications/cancelled (or, on a 2026-07-28 HTTP connection,
            # aborts the request's POST, which is that revision's cancellation signal).
            with anyio.move_on_after(cancel_after_ms / 1000.0) as scope:
                result = await call()
            record["cancelled"] = scope.cancelled_caught
        if result is not None:
            record["is_error"] = bool(getattr(result, "is_error", False))
            record["content"] = [to_json(block) for block in getattr(result, "content", [])]
            record["structured_content"] = to_json(getattr(result, "structured_content", None))
            record["text"] = "".join(
                block.get("text", "") for block in record["content"] if block.get("type") == "text"
            )
            record["meta"] = to_json(getattr(result, "meta", None))

    async def step_set_logging_level(self, step: dict[str, Any], record: dict[str, Any]) -> None:
        await self.session.set_logging_level(step["level"])
        record["level"] = step["level"]

    async def step_ping(self, step: dict[str, Any], record: dict[str, Any]) -> None:
        await self.session.send_ping()

    async def step_list_resources(self, step: dict[str, Any], record: dict[str, Any]) -> None:
        page = await self.session.list_resources()
        record["resources"] = [to_json(r) for r in page.resources]

    async def step_list_prompts(self, step: dict[str, Any], record: dict[str, Any]) -> None:
        page = await self.session.list_prompts()
        record["prompts"] = [to_json(p) for p in page.prompts]

    async def step_sleep(self, step: dict[str, Any], record: dict[str, Any]) -> None:
        import anyio

        await anyio.sleep(step["ms"] / 1000.0)

    async def step_barrier(self, step: dict[str, Any], record: dict[str, Any]) -> None:
        import anyio

        directory, name, count = step["dir"], step["name"], step["count"]
        with open(os.path.join(directory, f"{name}.{os.getpid()}"), "w", encoding="utf-8"):
            pass
        deadline = time.monotonic() + step.get("timeout_ms", 30_000) / 1000.0
        while True:
            arrived = [f for f in os.listdir(directory) if f.startswith(name + ".")]
            record["arrived"] = len(arrived)
            if len(arrived) >= count:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"barrier {name}: {len(arrived)} of {count} arrived")
            await anyio.sleep(0.05)

    async def step_parallel(self, step: dict[str, Any], record: dict[str, Any]) -> None:
        import anyio

        subs = step["steps"]
        results: list[dict[str, Any]] = []
        records = [self.new_record(i, sub, results) for i, sub in enumerate(subs)]
        record["results"] = results
        async with anyio.create_task_group() as tg:
            for sub, sub_record in zip(subs, records):
                # run_step records failures instead of raising them, so one failing call
                # does not cancel its siblings.
                tg.start_soon(self.run_step, sub, sub_record)
        failed = [r for r in results if not r["ok"]]
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(subs)} parallel steps failed")


async def run(plan: dict[str, Any], result: dict[str, Any]) -> None:
    import anyio

    driver = Driver(plan, result)
    steps = list(plan.get("steps", []))
    if not any(s["op"] == "initialize" for s in steps):
        steps.insert(0, {"op": "initialize"})
    timeout_s = float(plan.get("timeout_ms", DEFAULT_TIMEOUT_MS)) / 1000.0
    timings = result["timings"]
    started = time.monotonic()
    phase = "connecting"
    # The watchdog covers connect, steps and shutdown, so a wedged server produces a JSON
    # "timed out" result instead of the driver being killed from outside with no output.
    watchdog = anyio.CancelScope(deadline=anyio.current_time() + timeout_s)
    try:
        with watchdog:
            # One `async with` for the whole connection, so a failure inside the transport's
            # task group (connection refused, server exited) propagates through the SDK's
            # context managers as the real exception rather than as a bare cancellation.
            async with AsyncExitStack() as stack:
                await driver.connect(stack)
                timings["connect_ms"] = round((time.monotonic() - started) * 1000.0, 3)
                phase = "running the steps"
                steps_started = time.monotonic()
                await driver.run_steps(steps, result["steps"])
                timings["steps_ms"] = round((time.monotonic() - steps_started) * 1000.0, 3)
                phase = "shutting down"
            phase = "done"
    except Exception as exc:
        result["shutdown_error" if phase == "shutting down" else "error"] = describe_error(exc)
    finally:
        driver.collect_server_stderr()
    if watchdog.cancelled_caught:
        err = {
            "type": "PlanTimeout",
            "message": f"the plan did not finish within {timeout_s:g} s (stuck {phase})",
        }
        result["shutdown_error" if phase == "shutting down" else "error"] = err


def new_result() -> dict[str, Any]:
    try:
        from importlib.metadata import version

        sdk_version = version("mcp")
    except Exception:
        sdk_version = None
    return {
        "ok": False,
        "exit_code": 1,
        "driver": {"sdk_version": sdk_version, "python": sys.version.split()[0]},
        "transport": None,
        "protocol": None,
        "protocol_version": None,
        "server_info": None,
        "server_capabilities": None,
        "instructions": None,
        "instructions_length": None,
        "tools": None,
        "steps": [],
        "logs": [],
        "notifications": [],
        "http": [],
        "error": None,
        "shutdown_error": None,
        "server_stderr": None,
        "timings": {"connect_ms": None, "steps_ms": None, "total_ms": None},
    }


def main(argv: list[str]) -> int:
    result = new_result()
    exit_code = 1
    try:
        plan = read_plan(argv)
        validate_plan(plan)
        result["transport"] = plan["transport"]["type"]
        result["protocol"] = plan.get("protocol", "legacy")

        import logging
        import warnings

        import anyio
        from mcp.shared.exceptions import MCPDeprecationWarning

        # The SDK marks logging/setLevel and ping deprecated (2026-07-28); calling them is the
        # point of some steps, so the warnings are noise on stderr.
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        logging.basicConfig(
            stream=sys.stderr,
            level=logging.DEBUG if plan.get("verbose") else logging.WARNING,
            format="[mcp_driver] %(levelname)s %(name)s: %(message)s",
        )
        anyio.run(run, plan, result)
        all_ok = result["error"] is None and all(s.get("ok") for s in result["steps"])
        result["ok"] = all_ok
        exit_code = 0 if all_ok else 1
    except PlanError as exc:
        result["error"] = {"type": "PlanError", "message": str(exc), "traceback": ""}
        exit_code = 2
    except BaseException as exc:  # noqa: BLE001 - the contract is "always print JSON"
        result["error"] = describe_error(exc)
        exit_code = 1
    result["exit_code"] = exit_code
    result["timings"]["total_ms"] = now_ms()
    sys.stdout.write(json.dumps(result, default=repr) + "\n")
    sys.stdout.flush()
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
