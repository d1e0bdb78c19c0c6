"""The LiveKit worker: an `AgentServer` with explicit dispatch, a prewarm and the job entrypoint.

One job is one call. The entrypoint reads the dispatch metadata, joins the room, picks the
caller, builds the brain (the LangGraph graph behind `GraphLLM`) and the voice session, greets
the caller in their language and returns; LiveKit keeps the job alive. When the caller hangs
up the session closes, the job is asked to shut down, and the shutdown callback releases what
the brain opened (checkpointer, clients), so the conversation's state is flushed.

The entrypoint and prewarm are picklable objects holding the settings, because LiveKit sends
them to its job processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livekit import rtc
from livekit.agents import Agent, AgentServer, AgentSession, JobContext, JobProcess, vad
from livekit.agents.voice.events import CloseEvent
from livekit.agents.voice.room_io import RoomOptions
from livekit.agents.worker import ServerEnvOption
from prometheus_client import CollectorRegistry

from agent.brain import Brain, build_brain
from agent.chat.channel import channel_for_brain
from agent.metadata import merge_participant_attributes, parse_dispatch_metadata
from agent.metrics import WorkerMetrics
from agent.observability import bind_log_fields, flush_traces, start_otel_tracing

# Imported at module level, on the main thread: LiveKit plugins refuse other threads.
from agent.providers import MediaConfig, build_session, build_vad

if TYPE_CHECKING:
    from agent.settings import WorkerSettings

__all__ = [
    "METRICS_KEY",
    "VAD_KEY",
    "Conversation",
    "JobEntrypoint",
    "Prewarm",
    "build_server",
    "new_server",
    "serve",
    "start_conversation",
]

logger = logging.getLogger(__name__)

VAD_KEY = "vad"
METRICS_KEY = "metrics"
TRACES_KEY = "traces"


def voice_room_options(caller_identity: str) -> RoomOptions:
    """Audio in and out with the caller, transcripts and `lk.chat` text; close when they leave."""
    return RoomOptions(participant_identity=caller_identity, close_on_disconnect=True)


def load_vad(settings: WorkerSettings) -> vad.VAD:
    """Silero VAD with the configured thresholds; blocking, so it runs in prewarm."""
    return build_vad(MediaConfig.from_settings(settings))


@dataclass
class Conversation:
    """One running call: its session, its brain and the resources the brain opened."""

    session: AgentSession[Any]
    brain: Brain
    caller_identity: str
    stack: contextlib.AsyncExitStack
    started_at: float = field(default_factory=time.monotonic)
    _closed: bool = False

    async def aclose(self, reason: str = "closed") -> None:
        """Close the session, then release what the brain opened. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.session.aclose()
        finally:
            await self.stack.aclose()
        logger.info(
            "conversation ended",
            extra={"reason": reason, "duration_s": round(time.monotonic() - self.started_at, 1)},
        )


async def _wait_for_caller(
    ctx: JobContext, identity: str | None, timeout_s: float
) -> rtc.RemoteParticipant | None:
    try:
        return await asyncio.wait_for(ctx.wait_for_participant(identity=identity), timeout_s)
    except TimeoutError:
        return None


def _shutdown_when_closed(ctx: JobContext) -> Callable[[CloseEvent], None]:
    def on_close(event: CloseEvent) -> None:
        ctx.shutdown(reason=f"session closed: {event.reason.value}")

    return on_close


async def start_conversation(
    ctx: JobContext,
    settings: WorkerSettings,
    metrics: WorkerMetrics,
    *,
    vad_model: vad.VAD | None,
) -> Conversation | None:
    """Join, find the caller, build brain and session, greet. None when no caller came."""
    bind_log_fields(ctx, room=ctx.room.name, job_id=ctx.job.id)
    metadata, problems = parse_dispatch_metadata(ctx.job.metadata)

    await ctx.connect()
    caller = await _wait_for_caller(ctx, metadata.caller_identity, settings.caller_wait_timeout_s)
    if caller is None:
        logger.info(
            "no caller joined within %.0f s; leaving the room", settings.caller_wait_timeout_s
        )
        return None
    metadata, attribute_problems = merge_participant_attributes(metadata, caller.attributes)
    problems.extend(attribute_problems)
    if problems:
        logger.warning("using defaults for bad dispatch metadata: %s", "; ".join(problems))
        metrics.error("metadata", recoverable=True)
    metrics.conversation_started(metadata_ok=not problems)
    logger.info(
        "caller joined",
        extra={"caller": caller.identity, "metadata_fields": metadata.present_fields()},
    )

    stack = contextlib.AsyncExitStack()
    try:
        brain = await build_brain(
            settings,
            metadata,
            room_name=ctx.room.name,
            caller_identity=caller.identity,
            stack=stack,
            registry=metrics.registry,
        )
        bind_log_fields(ctx, conversation_id=brain.thread_id)
        session = build_session(
            MediaConfig.from_settings(settings),
            llm=brain.llm,
            vad=vad_model,  # type: ignore[arg-type]
            allow_preemptive=not brain.has_side_effecting_tools,
        )
        conversation = Conversation(
            session=session, brain=brain, caller_identity=caller.identity, stack=stack
        )
        metrics.observe_session(session)
        metrics.observe_tools(brain.llm)
        session.on("close", _shutdown_when_closed(ctx))
        ctx.add_shutdown_callback(conversation.aclose)
        # Typed chat, slash commands and agent events share the caller's room.
        channel = channel_for_brain(
            session, ctx.room, brain=brain, caller_identity=caller.identity, settings=settings
        )
        # Registered after the brain's resources, so it closes before them.
        stack.push_async_callback(channel.aclose)
        # The graph owns tools and instructions; GraphLLM flushes TTS at tool boundaries.
        await session.start(
            agent=Agent(instructions=brain.instructions),
            room=ctx.room,
            room_options=channel.room_options(voice_room_options(caller.identity)),
        )
    except BaseException:
        await stack.aclose()
        raise
    session.say(brain.greeting, allow_interruptions=True)
    await channel.announce()
    return conversation


@dataclass(frozen=True)
class JobEntrypoint:
    """The `rtc_session` entrypoint: one call per job."""

    settings: WorkerSettings

    async def __call__(self, ctx: JobContext) -> None:
        metrics = ctx.proc.userdata.get(METRICS_KEY)
        if not isinstance(metrics, WorkerMetrics):
            metrics = WorkerMetrics(CollectorRegistry(auto_describe=True))
        traces = ctx.proc.userdata.get(TRACES_KEY)
        if traces is not None:
            # Spans still buffered at hang-up belong to this call: send them before the job ends.
            ctx.add_shutdown_callback(functools.partial(flush_traces, traces))
        vad_model = ctx.proc.userdata.get(VAD_KEY)
        if vad_model is None:
            vad_model = await asyncio.to_thread(load_vad, self.settings)
        try:
            conversation = await start_conversation(
                ctx, self.settings, metrics, vad_model=vad_model
            )
        except Exception:
            metrics.error("startup")
            logger.exception("could not start the conversation")
            ctx.shutdown(reason="startup failed")
            return
        if conversation is None:
            ctx.shutdown(reason="no caller")


@dataclass(frozen=True)
class Prewarm:
    """Runs once per job process, before any job: load Silero VAD, create the metrics,
    start trace export when configured."""

    settings: WorkerSettings

    def __call__(self, proc: JobProcess) -> None:
        proc.userdata[VAD_KEY] = load_vad(self.settings)
        proc.userdata[METRICS_KEY] = WorkerMetrics(CollectorRegistry(auto_describe=True))
        proc.userdata[TRACES_KEY] = start_otel_tracing(self.settings)


def new_server(settings: WorkerSettings) -> AgentServer:
    """The `AgentServer` with the worker's options and prewarm, before its entrypoint is set.

    `agent/worker.py` registers the entrypoint with `@server.rtc_session(agent_name=...)`.
    """
    multiproc_dir = None
    if settings.prometheus_port is not None:
        multiproc_dir = settings.resolved_prometheus_multiproc_dir
    secret = settings.livekit_api_secret
    server = AgentServer(
        ws_url=settings.livekit_url,
        api_key=settings.livekit_api_key,
        api_secret=secret.get_secret_value() if secret is not None else None,
        port=(
            settings.worker_port
            if settings.worker_port is not None
            else ServerEnvOption(dev_default=0, prod_default=8081)
        ),
        drain_timeout=settings.drain_timeout_s,
        prometheus_port=settings.prometheus_port,
        prometheus_multiproc_dir=str(multiproc_dir) if multiproc_dir is not None else None,
        setup_fnc=Prewarm(settings),
        preload_modules=["agent.server", "agent.brain", "agent.providers"],
    )
    return server


def build_server(settings: WorkerSettings) -> AgentServer:
    """A worker registered under AGENT_NAME for explicit dispatch (tests, embedding)."""
    server = new_server(settings)
    server.rtc_session(JobEntrypoint(settings), agent_name=settings.agent_name)
    return server


async def serve(server: AgentServer, *, devmode: bool, drain_timeout_s: int) -> int:
    """Run the worker until SIGINT/SIGTERM; in production drain running calls first."""
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            logger.warning("second stop signal: exiting without waiting for calls")
            os._exit(1)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    run_task = asyncio.create_task(server.run(devmode=devmode), name="agent_server_run")
    stop_task = asyncio.create_task(stop.wait(), name="agent_server_stop")
    try:
        await asyncio.wait({run_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        if run_task.done():
            exc = run_task.exception()
            if exc is not None:
                logger.error("worker stopped: %s", exc)
                return 1
            return 0
        logger.info("stopping: %s", "draining calls" if not devmode else "dev mode")
        if not devmode:
            try:
                await server.drain(timeout=drain_timeout_s or None)
            except TimeoutError:
                logger.warning("drain timed out after %d s; closing", drain_timeout_s)
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        stop_task.cancel()
        await server.aclose()
        if not run_task.done():
            run_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await run_task
