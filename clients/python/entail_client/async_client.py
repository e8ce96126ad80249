"""The asynchronous client: the same operations as :class:`entail_client.Client`, awaited."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import httpx

from . import _core, _datasets
from ._core import Call, DecisionReport, RetryPolicy
from .errors import DecisionTimeout, EntailError, error_from_response
from .types import (
    AuditPage,
    BatchOut,
    DatasetBindingsOut,
    DatasetDiffOut,
    DatasetListOut,
    DatasetTagHistoryOut,
    DatasetTagMoveOut,
    DatasetUploadProgressOut,
    DatasetVersionOut,
    DatasetVersionsOut,
    DecisionOut,
    ImpactJobOut,
    ReplayOut,
    RulesetList,
    RulesetOut,
    RulesetVersionOut,
    TagMoveOut,
    WhoAmIOut,
)


class AsyncClient:
    """The Entail API, asynchronously (``async with AsyncClient() as client: ...``).

    ``url`` and ``api_key`` default to ``ENTAIL_URL`` and ``ENTAIL_API_KEY``. Every
    call retries 429 and 503 answers and connection errors (``retry``: bounded
    attempts, exponential backoff with jitter, ``Retry-After`` honoured); POSTs carry
    an ``Idempotency-Key`` reused on their retries. Error answers raise the
    :mod:`entail_client.errors` exception of their status.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url, api_key = _core.config(url, api_key)
        self.retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=_core.headers(api_key), timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    # --- decisions ---------------------------------------------------------------------

    async def decide(
        self,
        ruleset: str,
        facts: Mapping[str, Any] | None = None,
        query: list[str] | str | None = None,
        *,
        explain: bool = False,
        limits: Mapping[str, int] | None = None,
        timeout: float = 60.0,
        wait_ms: int = 2000,
        sse: bool = True,
        locale: str | None = None,
    ) -> DecisionOut:
        """The final decision (``succeeded`` or ``failed``). The service waits up to
        ``wait_ms`` itself; past that (202) the client follows the decision's event
        stream (``sse``), falling back to polling, until ``timeout`` seconds have
        passed since the call (then :class:`DecisionTimeout`). ``locale``: the
        language of the answers' reason messages (a BCP 47 tag such as ``de``)."""
        deadline = time.monotonic() + timeout
        wait_ms = min(wait_ms, int(timeout * 1000))
        record = cast(
            DecisionOut,
            await self._json(_core.decide_call(ruleset, facts, query, explain, wait_ms, limits, locale)),
        )
        if _core.is_final(record):
            return record
        return await self._wait(record["decision_id"], deadline, timeout, sse)

    async def decide_batch(
        self,
        ruleset: str,
        cases: list[Mapping[str, Any]],
        query: list[str] | str | None = None,
        *,
        explain: bool = False,
        limits: Mapping[str, int] | None = None,
        timeout: float = 120.0,
        wait_ms: int = 5000,
        sse: bool = True,
    ) -> BatchOut:
        """Every case decided (each case: ``{"facts": ..., "query": [...]?}``); the
        decisions not final within the service's ``wait_ms`` are waited for here."""
        deadline = time.monotonic() + timeout
        wait_ms = min(wait_ms, int(timeout * 1000))
        batch = cast(
            BatchOut, await self._json(_core.batch_call(ruleset, cases, query, explain, wait_ms, limits))
        )
        decisions = [
            d if _core.is_final(d) else await self._wait(d["decision_id"], deadline, timeout, sse)
            for d in batch["decisions"]
        ]
        return {"done": len(decisions), "total": batch["total"], "decisions": decisions}

    async def decision(self, decision_id: str) -> DecisionOut:
        """A decision as it is now (pending, running or final)."""
        return cast(DecisionOut, await self._json(_core.get_call(_core.decision_path(decision_id))))

    async def _wait(self, decision_id: str, deadline: float, timeout: float, sse: bool) -> DecisionOut:
        if sse:
            record = await self._follow(decision_id, deadline, timeout)
            if record is not None:
                return record
        return await self._poll(decision_id, deadline, timeout)

    async def _follow(self, decision_id: str, deadline: float, timeout: float) -> DecisionOut | None:
        """The final record from the decision's event stream; None when the stream is
        not available (saturated, cut) and polling should take over."""
        path = _core.decision_path(decision_id) + "/events"
        parser = _core.EventParser()
        try:
            remaining = max(0.001, deadline - time.monotonic())
            read = httpx.Timeout(10.0, read=min(remaining, 20.0))  # keep-alives come every 15 s
            async with self._http.stream(
                "GET", path, headers={"Accept": "text/event-stream"}, timeout=read
            ) as answer:
                if answer.status_code != 200:
                    await answer.aread()
                    if answer.status_code in (401, 403, 404):
                        raise error_from_response(answer)
                    return None
                async for line in answer.aiter_lines():
                    event = parser.line(line)
                    if event is not None and event[0] == "done":
                        return cast(DecisionOut, json.loads(event[1]))
                    if time.monotonic() >= deadline:
                        raise DecisionTimeout(decision_id, timeout)
        except httpx.ReadTimeout:
            if time.monotonic() >= deadline:
                raise DecisionTimeout(decision_id, timeout) from None
        except httpx.TransportError:
            pass
        return None

    async def _poll(self, decision_id: str, deadline: float, timeout: float) -> DecisionOut:
        for interval in _core.poll_intervals():
            record = await self.decision(decision_id)
            if _core.is_final(record):
                return record
            left = deadline - time.monotonic()
            if left <= 0:
                raise DecisionTimeout(decision_id, timeout)
            await asyncio.sleep(min(interval, left))
        raise AssertionError("unreachable")  # poll_intervals never ends

    # --- rulesets ----------------------------------------------------------------------

    async def publish(
        self,
        name: str,
        source: str,
        *,
        description: str = "",
        tests: list[Mapping[str, Any]] | None = None,
        masked_predicates: list[str] | None = None,
        datasets: Mapping[str, str] | None = None,
    ) -> RulesetVersionOut:
        """Publish a version (``created`` is False when the source is the latest's).
        ``datasets``: each ``%@dataset`` name of the program -> a dataset selector
        (``orgchart@prod`` floats with the tag, ``orgchart@3`` is pinned)."""
        call = _core.publish_call(name, source, description, tests, masked_predicates, datasets)
        return cast(RulesetVersionOut, await self._json(call))

    async def tag(self, name: str, tag: str, version: int) -> TagMoveOut:
        """Point ``tag`` of ruleset ``name`` at ``version``."""
        return cast(TagMoveOut, await self._json(_core.tag_call(name, tag, version)))

    async def ruleset(self, name: str) -> RulesetOut:
        return cast(RulesetOut, await self._json(_core.get_call(_core.ruleset_path(name))))

    async def schema(
        self, name: str, *, version: int | str | None = None, tag: str | None = None
    ) -> dict[str, Any]:
        """The JSON Schema (draft 2020-12) of a decision request for a version of
        ruleset ``name`` (the latest unless ``version`` or ``tag``): with the
        program's ``%@input`` declarations, its typed case facts."""
        call = _core.get_call(_core.ruleset_path(name) + "/schema", version=version, tag=tag)
        return cast(dict[str, Any], await self._json(call))

    async def rulesets(self) -> RulesetList:
        return cast(RulesetList, await self._json(_core.get_call("/v1/rulesets")))

    async def whoami(self) -> WhoAmIOut:
        return cast(WhoAmIOut, await self._json(_core.get_call("/v1/whoami")))

    # --- audit -------------------------------------------------------------------------

    async def replay(self, decision_id: str) -> ReplayOut:
        """Re-evaluate an audited decision with its stored version and compare."""
        return cast(ReplayOut, await self._json(_core.replay_call(decision_id)))

    async def impact(
        self,
        name: str,
        version: int | str,
        start: datetime | str,
        end: datetime | str,
        *,
        limit: int = 1000,
        timeout: float = 300.0,
        datasets: Mapping[str, str] | None = None,
    ) -> ImpactJobOut:
        """Re-run the window's decisions against ``version`` and wait for the job:
        ``succeeded`` with its ``result``, or ``failed``. ``datasets``: binding ->
        selector replacing the versions the decisions recorded ("same rules, new data")."""
        deadline = time.monotonic() + timeout
        job = cast(
            ImpactJobOut, await self._json(_core.impact_call(name, version, start, end, limit, datasets))
        )
        for interval in _core.poll_intervals(0.1, 2.0):
            if job["status"] != "running":
                return job
            left = deadline - time.monotonic()
            if left <= 0:
                raise DecisionTimeout(job["job_id"], timeout)
            await asyncio.sleep(min(interval, left))
            job = cast(ImpactJobOut, await self._json(_core.get_call(job["status_url"])))
        raise AssertionError("unreachable")

    async def search(
        self,
        start: datetime | str,
        end: datetime | str,
        *,
        ruleset: str | None = None,
        version: int | None = None,
        status: str | None = None,
        predicate: str | None = None,
        page_size: int = 50,
    ) -> AsyncIterator[AuditPage]:
        """The audit trail's decisions completed in [start, end), newest first, a page
        at a time (the pages' cursor is followed to the end)."""
        token: str | None = None
        while True:
            call = _core.search_call(start, end, ruleset, version, status, predicate, page_size, token)
            page = cast(AuditPage, await self._json(call))
            yield page
            token = page["next_page_token"]
            if not token:
                return

    async def audited(self, decision_id: str) -> DecisionOut:
        """The audit trail's record of a decision (with its facts and proofs)."""
        return cast(DecisionOut, await self._json(_core.get_call(_core.audited_path(decision_id))))

    async def report(self, decision_id: str) -> DecisionReport:
        """The decision's report: a printable HTML document, the same bytes for the same
        record, with its SHA-256 (checked here; recorded by the service for audited ones)."""
        return _core.report_from(await self._send(_core.report_call(decision_id)))

    # --- datasets ----------------------------------------------------------------------

    async def push_dataset(
        self,
        name: str,
        source: str | Path,
        *,
        format: _datasets.Format | None = None,
        predicate: str | None = None,
        header: bool = False,
        base: str | None = None,
        tag: str | None = None,
        description: str = "",
        progress: _datasets.ProgressCallback | None = None,
        upload_id: str | None = None,
    ) -> DatasetVersionOut:
        """Upload the file ``source`` as a new version of dataset ``name``, streamed
        (NDJSON, CSV or Parquet: from ``format`` or the file's suffix; CSV and Parquet
        name their ``predicate``). ``progress(bytes, facts)`` is called as it goes out.
        ``created`` is False when the content is the latest version's."""
        path = Path(source)
        fmt = _datasets.format_of(path, format)
        call = _datasets.upload_call(
            name,
            content_type=_datasets.CONTENT_TYPES[fmt],
            predicate=predicate,
            header=header,
            base=base,
            tag=tag,
            description=description,
            upload_id=upload_id,
        )

        async def send() -> httpx.Response:
            counter = _datasets.Counter(progress, fmt != "parquet")
            return await self._http.request(
                "POST",
                call.path,
                params=call.params,
                headers=call.headers,
                content=_datasets.afile_chunks(path, counter),
                timeout=httpx.Timeout(3600.0, connect=30.0),
            )

        return cast(DatasetVersionOut, (await self._upload(send)).json())

    async def push_dataset_parts(
        self,
        name: str,
        parts: Mapping[str, str | Path],
        *,
        header: bool = False,
        base: str | None = None,
        tag: str | None = None,
        description: str = "",
        progress: _datasets.ProgressCallback | None = None,
        upload_id: str | None = None,
    ) -> DatasetVersionOut:
        """Upload several files at once (multipart), one per predicate: ``parts`` maps
        each predicate to its file (an NDJSON file's lines name their own)."""
        call = _datasets.upload_call(
            name,
            content_type="",
            predicate=None,
            header=header,
            base=base,
            tag=tag,
            description=description,
            upload_id=upload_id,
        )

        async def send() -> httpx.Response:
            counter = _datasets.Counter(progress, True)
            files, handles = _datasets.multipart_files(parts, counter)
            try:
                return await self._http.request(
                    "POST",
                    call.path,
                    params=call.params,
                    headers=call.headers,
                    files=files,
                    timeout=httpx.Timeout(3600.0, connect=30.0),
                )
            finally:
                for handle in handles:
                    handle.close()

        return cast(DatasetVersionOut, (await self._upload(send)).json())

    async def dataset_rulesets(self, name: str) -> DatasetBindingsOut:
        """The ruleset versions that bind dataset ``name``, newest first (one per binding)."""
        path = _datasets.dataset_path(name) + "/rulesets"
        return cast(DatasetBindingsOut, await self._json(_core.get_call(path)))

    async def datasets(self) -> DatasetListOut:
        """Each dataset's latest version."""
        return cast(DatasetListOut, await self._json(_core.get_call("/v1/datasets")))

    async def dataset(self, selector: str) -> DatasetVersionOut:
        """One version: ``name``, ``name@3``, ``name@tag`` or a version hash."""
        return cast(DatasetVersionOut, await self._json(_core.get_call(_datasets.dataset_path(selector))))

    async def dataset_versions(self, name: str) -> DatasetVersionsOut:
        """Every version of dataset ``name``, newest first."""
        path = _datasets.dataset_path(name) + "/versions"
        return cast(DatasetVersionsOut, await self._json(_core.get_call(path)))

    async def dataset_facts(
        self, selector: str, predicate: str, *, page_size: int = 1000
    ) -> AsyncIterator[list[int | str]]:
        """Every row of ``predicate`` in canonical order (the pages followed to the end)."""
        token: str | None = None
        path = _datasets.dataset_path(selector) + "/facts"
        while True:
            call = _core.get_call(path, predicate=predicate, page_size=page_size, page_token=token)
            page = await self._json(call)
            for row in page["rows"]:
                yield row
            token = page["next_page_token"]
            if not token:
                return

    async def dataset_diff(
        self, name: str, from_: str | int, to: str | int = "latest", *, sample: int = 100
    ) -> DatasetDiffOut:
        """Per predicate, the facts added and removed from version ``from_`` to ``to``
        (numbers, tags or selectors), with up to ``sample`` of each."""
        call = _core.get_call(
            _datasets.dataset_path(name) + "/diff", **_datasets.diff_params(from_, to, sample)
        )
        return cast(DatasetDiffOut, await self._json(call))

    async def tag_dataset(self, name: str, tag: str, version: int) -> DatasetTagMoveOut:
        """Point ``tag`` of dataset ``name`` at ``version``."""
        return cast(DatasetTagMoveOut, await self._json(_datasets.tag_call(name, tag, version)))

    async def dataset_tag_history(self, name: str, tag: str) -> DatasetTagHistoryOut:
        path = f"{_datasets.dataset_path(name)}/tags/{_core._segment(tag)}"
        return cast(DatasetTagHistoryOut, await self._json(_core.get_call(path)))

    async def dataset_upload(self, name: str, upload_id: str) -> DatasetUploadProgressOut:
        """An upload's progress as the service reads it (``upload_id`` as sent)."""
        path = f"{_datasets.dataset_path(name)}/uploads/{_core._segment(upload_id)}"
        return cast(DatasetUploadProgressOut, await self._json(_core.get_call(path)))

    async def _upload(self, send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        """``send()`` retried per the policy (each attempt streams the file again)."""
        policy = self.retry
        for attempt in range(policy.attempts):
            last = attempt == policy.attempts - 1
            try:
                answer = await send()
            except httpx.TransportError:
                if last:
                    raise
                await asyncio.sleep(policy.delay(attempt, None))
                continue
            if answer.is_success:
                return answer
            if last or not policy.should_retry(answer):
                raise error_from_response(answer)
            await asyncio.sleep(policy.delay(attempt, _core.retry_after(answer)))
        raise EntailError(0, "No attempts", "RetryPolicy.attempts must be at least 1")

    # --- sending -----------------------------------------------------------------------

    async def _json(self, call: Call) -> Any:
        return (await self._send(call)).json()

    async def _send(self, call: Call) -> httpx.Response:
        """The answer to ``call``, retried per the policy; an error answer raises."""
        policy = self.retry
        for attempt in range(policy.attempts):
            last = attempt == policy.attempts - 1
            try:
                answer = await self._http.request(
                    call.method,
                    call.path,
                    json=call.json,
                    params=call.params,
                    headers=call.headers,
                    timeout=_core.timeout_for(call, self._http.timeout),
                )
            except httpx.TransportError:
                if last:
                    raise
                await asyncio.sleep(policy.delay(attempt, None))
                continue
            if answer.is_success:
                return answer
            if last or not policy.should_retry(answer):
                raise error_from_response(answer)
            await asyncio.sleep(policy.delay(attempt, _core.retry_after(answer)))
        raise EntailError(0, "No attempts", "RetryPolicy.attempts must be at least 1")
