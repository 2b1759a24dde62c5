"""A small typed client for the parts of Kapacitor's HTTP API errloop uses.

Errors from Kapacitor come back as :class:`KapacitorError` carrying Kapacitor's own
message (which for TICKscript errors holds ``line L char C``, see :func:`tick_position`).
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

_POS = re.compile(r"line (\d+) char (\d+)")


class KapacitorError(RuntimeError):
    """Kapacitor refused a request; ``message`` is Kapacitor's own text."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"{method} {path}: {status} {message}")
        self.method, self.path, self.status, self.message = method, path, status, message


def tick_position(message: str) -> tuple[int, int] | None:
    """(line, col) of a TICKscript error in Kapacitor's message, if it names one."""
    m = _POS.search(message)
    return (int(m.group(1)), int(m.group(2))) if m else None


class KapacitorClient:
    """Tasks, topic handlers and ``[[httppost]]`` config overrides of one Kapacitor."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=f"{self.url}/kapacitor/v1", timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KapacitorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, ok404: bool = False, **kw: Any) -> Any:
        resp = self._http.request(method, path, **kw)
        if resp.status_code == 404 and ok404:
            return None
        if resp.status_code >= 300:
            try:
                body = resp.json()
                msg = body.get("error") or body.get("message") or resp.text
            except ValueError:
                msg = resp.text
            raise KapacitorError(method, path, resp.status_code, str(msg).strip())
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    def ping(self) -> bool:
        try:
            return self._http.get("/ping").status_code == 204
        except httpx.HTTPError:
            return False

    # ------------------------------------------------------------------ tasks
    def get_task(self, task_id: str) -> dict[str, Any] | None:
        task: dict[str, Any] | None = self._call(
            "GET", f"/tasks/{task_id}", ok404=True, params={"script-format": "raw", "dot-view": "labels"}
        )
        return task

    def list_tasks(self, pattern: str = "*") -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            body = self._call(
                "GET",
                "/tasks",
                params={
                    "pattern": pattern,
                    "offset": offset,
                    "limit": 100,
                    "script-format": "raw",
                    "fields": [
                        "script",
                        "status",
                        "executing",
                        "error",
                        "type",
                        "last-enabled",
                        "modified",
                        "template-id",
                    ],
                },
            )
            tasks = body.get("tasks", [])
            out += tasks
            if len(tasks) < 100:
                return out
            offset += 100

    def define_task(self, task_id: str, script: str, status: str = "disabled") -> dict[str, Any]:
        """Create the task, or replace its script (and restart it when enabled)."""
        existing = self.get_task(task_id)
        if existing is None:
            created: dict[str, Any] = self._call(
                "POST", "/tasks", json={"id": task_id, "script": script, "status": status}
            )
            return created
        self._call("PATCH", f"/tasks/{task_id}", json={"script": script})
        if status == "enabled":
            # a running task keeps its old script until its status changes (tick-facts §4.2)
            self.set_status(task_id, "disabled")
        patched: dict[str, Any] = self._call("PATCH", f"/tasks/{task_id}", json={"status": status})
        return patched

    def define_template_task(
        self, task_id: str, template_id: str, variables: dict[str, Any], status: str = "disabled"
    ) -> dict[str, Any]:
        """Create a task from a template with these vars, or point an existing one at them.

        A task that ran its own script is replaced (Kapacitor does not turn one into a template task).
        """
        existing = self.get_task(task_id)
        if existing is not None and existing.get("template-id") != template_id:
            self.delete_task(task_id)
            existing = None
        if existing is None:
            body = {"id": task_id, "template-id": template_id, "vars": variables, "status": status}
            created: dict[str, Any] = self._call("POST", "/tasks", json=body)
            return created
        self._call("PATCH", f"/tasks/{task_id}", json={"template-id": template_id, "vars": variables})
        if status == "enabled":
            self.set_status(task_id, "disabled")
        patched: dict[str, Any] = self._call("PATCH", f"/tasks/{task_id}", json={"status": status})
        return patched

    # ------------------------------------------------------------------ templates
    def get_template(self, template_id: str) -> dict[str, Any] | None:
        template: dict[str, Any] | None = self._call(
            "GET", f"/templates/{template_id}", ok404=True, params={"script-format": "raw"}
        )
        return template

    def define_template(self, template_id: str, script: str, kind: str) -> None:
        """Create the template, or replace its script: Kapacitor then reloads every task made from
        it, all or nothing (a script one of them cannot run is refused and nothing changes)."""
        if self.get_template(template_id) is None:
            self._call("POST", "/templates", json={"id": template_id, "type": kind, "script": script})
        else:
            self._call("PATCH", f"/templates/{template_id}", json={"script": script})

    def delete_template(self, template_id: str) -> None:
        self._call("DELETE", f"/templates/{template_id}", ok404=True)

    def set_status(self, task_id: str, status: str) -> None:
        self._call("PATCH", f"/tasks/{task_id}", json={"status": status})

    def restart_task(self, task_id: str) -> None:
        self.set_status(task_id, "disabled")
        self.set_status(task_id, "enabled")

    def delete_task(self, task_id: str) -> None:
        self._call("DELETE", f"/tasks/{task_id}")

    def wait_executing(self, task_id: str, timeout: float = 15.0, settle: float = 2.5) -> dict[str, Any]:
        """Poll until the task executes without error and still does ``settle`` seconds later.

        Kapacitor reports a task executing as soon as its pipeline starts; a UDF is
        initialised afterwards, in its own goroutine, once its process is up (a second or
        more on a busy machine), and only then can the task fail. Hence the settle time.
        """
        deadline = time.monotonic() + timeout
        task: dict[str, Any] | None = None
        executing_since: float | None = None
        while time.monotonic() < deadline + settle:
            task = self.get_task(task_id)
            if task is None:
                raise KapacitorError("GET", f"/tasks/{task_id}", 404, "task disappeared")
            if task.get("error"):
                raise KapacitorError("GET", f"/tasks/{task_id}", 200, f"task failed: {task['error']}")
            if task.get("executing"):
                executing_since = executing_since or time.monotonic()
                if time.monotonic() - executing_since >= settle:
                    return task
            elif time.monotonic() > deadline:
                break
            time.sleep(0.1)
        raise KapacitorError("GET", f"/tasks/{task_id}", 200, f"task not executing after {timeout:.0f} s: {task}")

    # ------------------------------------------------------------------ topic handlers
    def get_handler(self, topic: str, handler_id: str) -> dict[str, Any] | None:
        h: dict[str, Any] | None = self._call("GET", f"/alerts/topics/{topic}/handlers/{handler_id}", ok404=True)
        return h

    def list_handlers(self, topic: str) -> list[dict[str, Any]]:
        body = self._call("GET", f"/alerts/topics/{topic}/handlers", ok404=True) or {}
        handlers: list[dict[str, Any]] = body.get("handlers", [])
        return handlers

    def list_topics(self, pattern: str = "*") -> list[dict[str, Any]]:
        body = self._call("GET", "/alerts/topics", params={"pattern": pattern}) or {}
        topics: list[dict[str, Any]] = body.get("topics", [])
        return topics

    def put_handler(self, topic: str, handler: dict[str, Any]) -> None:
        """Create or replace a topic handler ({id, kind, options, match})."""
        if self.get_handler(topic, handler["id"]) is None:
            self._call("POST", f"/alerts/topics/{topic}/handlers", json=handler)
        else:
            self._call("PUT", f"/alerts/topics/{topic}/handlers/{handler['id']}", json=handler)

    def delete_handler(self, topic: str, handler_id: str) -> None:
        self._call("DELETE", f"/alerts/topics/{topic}/handlers/{handler_id}", ok404=True)

    def delete_topic(self, topic: str) -> None:
        self._call("DELETE", f"/alerts/topics/{topic}", ok404=True)

    # ------------------------------------------------------------------ [[httppost]] overrides
    def httppost_endpoints(self) -> dict[str, dict[str, Any]]:
        body = self._call("GET", "/config/httppost") or {}
        out = {}
        for element in body.get("elements", []):
            opts = element.get("options", {})
            out[opts.get("endpoint", "")] = opts
        return out

    def put_httppost(self, options: dict[str, Any]) -> None:
        """Set options of an existing ``[[httppost]]`` endpoint (keyed like kapacitor.conf).

        Only endpoints declared in kapacitor.conf can be used: Kapacitor 1.8.3 deletes an
        endpoint *added* through the config API at once (httppost Service.Update).
        """
        name = options["endpoint"]
        body = {k: v for k, v in options.items() if k != "endpoint"}
        self._call("POST", f"/config/httppost/{name}", json={"set": body})
