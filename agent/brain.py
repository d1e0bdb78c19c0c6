"""The brain of one conversation: tools, checkpointer, chat model, the assistant graph and
the GraphLLM that puts it in the LiveKit session.

`build_brain` is called once per job by the entrypoint (and by the text console); every
resource it opens is registered on the caller's `AsyncExitStack`, so leaving the stack
closes Redis, Qdrant and the PMS client in the right order.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.pregel.remote import RemoteGraph
from livekit.agents import APIConnectionError
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from agent.graph_llm import GraphLLM
from agent.metadata import DispatchMetadata, conversation_key
from agent.observability import flush_langsmith, langsmith_tracer
from agent.settings import DEFAULT_GRAPH, WorkerSettings, answers_ping, build_graph
from tools.documents import DocumentStore, build_document_store
from tools.embeddings import build_embedder
from tools.knowledge import knowledge_tools
from tools.pms import (
    PMS,
    GuestDesk,
    build_pms,
    build_verification_store,
    build_verification_throttle,
    pms_tools,
    throttle_policy,
)
from workflows.assistant import SPEAKING_NODES
from workflows.checkpoint import open_checkpointer, redact_url, turn_lock_for
from workflows.document_qa import document_qa_tool
from workflows.turn_lock import TurnLock, TurnLockTimeoutError, TurnLockUnavailableError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatModelConfig:
    """What the brain needs to reach a chat model; built from WorkerSettings at the edge."""

    model: str = "gpt-4.1-mini"
    api_key: SecretStr | None = None
    base_url: str | None = None
    temperature: float = 0.3
    timeout_s: float = 20.0
    max_retries: int = 1


def provider_name(base_url: str | None) -> str:
    """A short provider label for usage metrics, derived from the endpoint."""
    if not base_url:
        return "openai"
    host = base_url.split("//", 1)[-1].split("/", 1)[0].lower()
    for marker, name in (
        ("azure", "azure"),
        ("11434", "ollama"),
        ("ollama", "ollama"),
        ("groq", "groq"),
        ("openrouter", "openrouter"),
        ("together", "together"),
    ):
        if marker in host:
            return name
    return "openai-compatible"


def build_chat_model(config: ChatModelConfig) -> BaseChatModel | None:
    """The configured chat model, or None so the graph runs its deterministic fallback."""
    local_endpoint = config.base_url is not None and provider_name(config.base_url) == "ollama"
    if config.api_key is None and not local_endpoint:
        return None
    from langchain_openai import ChatOpenAI

    # Ollama and vLLM accept any key; the client library insists on one being set.
    key = config.api_key or SecretStr("not-needed")
    return ChatOpenAI(
        model=config.model,
        api_key=key,
        base_url=config.base_url,
        temperature=config.temperature,
        timeout=config.timeout_s,
        max_retries=config.max_retries,
        streaming=True,
        stream_usage=True,
    )


DEFAULT_INSTRUCTIONS = (
    "You are the voice assistant of a hospitality company. You help guests with their "
    "stay: property facts, their reservation, availability and extras. Use the tools for "
    "facts; never invent them. Keep answers short and friendly."
)


# The first sentence the agent says, in the caller's language.
_GREETINGS: dict[str, str] = {
    "en": "Hello{name}! I'm the virtual assistant{place}. How can I help you today?",
    "de": "Hallo{name}! Ich bin der virtuelle Assistent{place}. Wie kann ich Ihnen helfen?",
    "fr": "Bonjour{name} ! Je suis l'assistant virtuel{place}. Comment puis-je vous aider ?",
    "es": "¡Hola{name}! Soy el asistente virtual{place}. ¿En qué puedo ayudarle?",
    "it": "Buongiorno{name}! Sono l'assistente virtuale{place}. Come posso aiutarla?",
    "pt": "Olá{name}! Sou o assistente virtual{place}. Como posso ajudar?",
    "nl": "Hallo{name}! Ik ben de virtuele assistent{place}. Waarmee kan ik u helpen?",
}
_PLACE: dict[str, str] = {
    "en": " for {0}",
    "de": " von {0}",
    "fr": " de {0}",
    "es": " de {0}",
    "it": " di {0}",
    "pt": " de {0}",
    "nl": " van {0}",
}


def base_language(language: str | None) -> str:
    """'de-CH' → 'de'; unknown or empty → 'en'."""
    code = (language or "en").replace("_", "-").split("-", 1)[0].lower()
    return code if code in _GREETINGS else "en"


def greeting(
    language: str | None, *, guest_name: str | None = None, place: str | None = None
) -> str:
    lang = base_language(language)
    name = f" {guest_name.strip()}" if guest_name and guest_name.strip() else ""
    where = _PLACE[lang].format(place.strip()) if place and place.strip() else ""
    return _GREETINGS[lang].format(name=name, place=where)


@dataclass
class Brain:
    """Everything one conversation needs, built from settings and dispatch metadata."""

    llm: GraphLLM
    graph: Any
    tools: list[BaseTool]
    thread_id: str
    instructions: str
    greeting: str
    language: str
    has_side_effecting_tools: bool
    chat_model: BaseChatModel | None
    documents: DocumentStore
    pms: PMS
    desk: GuestDesk
    redis: aioredis.Redis | None = None
    providers: dict[str, str] = field(default_factory=dict)


def assistant_tools(
    documents: DocumentStore, pms: PMS, desk: GuestDesk, chat_model: BaseChatModel | None
) -> list[BaseTool]:
    """The tools the assistant graph binds: document search, the document-QA workflow, the PMS."""
    return [
        *knowledge_tools(documents),
        document_qa_tool(documents, model=chat_model),
        *pms_tools(pms, desk=desk),
    ]


def speaking_nodes(settings: WorkerSettings) -> tuple[str, ...] | None:
    """AGENT_SPEAKING_NODES; else the assistant's for the default graph; else GraphLLM's guess."""
    if settings.speaking_nodes:
        return settings.speaking_nodes
    return SPEAKING_NODES if settings.agent_graph == DEFAULT_GRAPH else None


def chat_model_config(settings: WorkerSettings) -> ChatModelConfig:
    return ChatModelConfig(
        model=settings.llm_model,
        api_key=settings.resolved_llm_api_key,
        base_url=settings.llm_base_url,
        temperature=settings.llm_temperature,
        timeout_s=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
    )


def conversation_context(metadata: DispatchMetadata, language: str) -> dict[str, Any]:
    """The facts the graph starts with; only keys the assistant state knows."""
    context: dict[str, Any] = {"language": language}
    if metadata.property_id:
        context["property_id"] = metadata.property_id
    if metadata.reservation_code:
        context["reservation_code"] = metadata.reservation_code
    if metadata.guest_name:
        context["guest_name"] = metadata.guest_name
    return context


def remote_graph(settings: WorkerSettings) -> RemoteGraph | None:
    """The graph on a LangGraph Agent Server, when LANGGRAPH_SERVER_URL is set."""
    if not settings.langgraph_server_url:
        return None
    key = settings.langgraph_api_key
    return RemoteGraph(
        settings.langgraph_assistant_id,
        url=settings.langgraph_server_url,
        api_key=key.get_secret_value() if key else None,
    )


async def _open_redis(url: str | None, stack: contextlib.AsyncExitStack) -> aioredis.Redis | None:
    """A connected client, or None when Redis is not configured or does not answer."""
    if not url:
        return None
    client = aioredis.from_url(url, socket_connect_timeout=2.0, socket_timeout=5.0)
    if not await answers_ping(client):
        await client.aclose()
        # The call goes on with local state: a caller must never meet silence over Redis.
        logger.error(
            "REDIS_URL (%s) does not answer: this call keeps its state locally", redact_url(url)
        )
        return None
    stack.push_async_callback(client.aclose)
    return client


def fail_fast(lock: TurnLock) -> TurnLock:
    """`lock`, with a state store that does not answer (or a turn lock held too long) turned
    into a final LiveKit error: retrying would keep the caller waiting; the apology comes now."""

    @asynccontextmanager
    async def hold(thread_id: str) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(lock(thread_id))
            except (TurnLockUnavailableError, TurnLockTimeoutError) as exc:
                raise APIConnectionError(str(exc), retryable=False) from exc
            yield

    def enter(thread_id: str) -> AbstractAsyncContextManager[None]:
        return hold(thread_id)

    return enter


async def build_brain(
    settings: WorkerSettings,
    metadata: DispatchMetadata,
    *,
    room_name: str,
    caller_identity: str,
    stack: contextlib.AsyncExitStack,
    registry: CollectorRegistry | None = None,
) -> Brain:
    """Assemble the conversation's brain; resources close when `stack` closes."""
    del registry  # metrics are recorded by the session layer from GraphLLM events
    redis = await _open_redis(settings.redis_url, stack)
    checkpointer = await stack.enter_async_context(
        open_checkpointer(
            redis_url=settings.redis_url if redis is not None else None,
            sqlite_path=settings.resolved_checkpoint_sqlite_path,
            ttl=settings.conversation_ttl_s,
            op_timeout=settings.checkpoint_timeout_s,
            max_checkpoints=settings.checkpoint_keep,
        )
    )
    turn_timeout = settings.llm_timeout_s * 3
    turn_lock = turn_lock_for(
        checkpointer,
        sqlite_path=settings.resolved_checkpoint_sqlite_path,
        wait_s=turn_timeout + 5.0,
        timeout_s=settings.checkpoint_timeout_s,
    )

    store_config = settings.document_store_config()
    embedder = build_embedder(store_config.embeddings, redis=redis)
    # the worker only reads: ingest runs in the CLI and the worker picks up what it publishes
    documents = build_document_store(store_config, redis=redis, embedder=embedder, read_only=True)
    stack.push_async_callback(documents.aclose)
    pms_config = settings.pms_config()
    pms = build_pms(pms_config, redis=redis)
    stack.push_async_callback(pms.aclose)
    key = conversation_key(metadata, room_name=room_name, caller_identity=caller_identity)
    desk = GuestDesk(
        pms,
        store=build_verification_store(redis),
        throttle=build_verification_throttle(redis, throttle_policy(pms_config)),
        caller=key.caller,
    )

    chat_model = build_chat_model(chat_model_config(settings))
    tools = assistant_tools(documents, pms, desk, chat_model)
    instructions = settings.agent_instructions or DEFAULT_INSTRUCTIONS
    graph: Any = build_graph(settings.agent_graph, chat_model, tools, checkpointer)
    served = remote_graph(settings)

    language = base_language(metadata.language or settings.default_language)
    thread_id = key.thread_id
    model_provider = provider_name(settings.llm_base_url) if chat_model else "fallback"
    langsmith = langsmith_tracer(settings)
    if langsmith is not None:
        stack.push_async_callback(flush_langsmith, langsmith)
    llm = GraphLLM(
        served or graph,
        thread_id=thread_id,
        speaking_nodes=speaking_nodes(settings),
        model=settings.llm_model if chat_model else "deterministic-fallback",
        provider=model_provider,
        context=conversation_context(metadata, language),
        tools=tools,
        turn_timeout=turn_timeout,
        config={"callbacks": [langsmith]} if langsmith is not None else None,
        turn_lock=fail_fast(turn_lock) if turn_lock is not None else None,
    )
    stack.push_async_callback(llm.aclose)
    logger.info(
        "brain ready",
        extra={"thread_id": thread_id, "llm": model_provider, "tools": len(tools)},
    )
    return Brain(
        llm=llm,
        # the data channel reads the in-worker thread only; a server thread it does not see
        graph=None if served is not None else graph,
        tools=tools,
        thread_id=thread_id,
        instructions=instructions,
        greeting=settings.agent_greeting or greeting(language, guest_name=metadata.guest_name),
        language=language,
        has_side_effecting_tools=not llm.preemptive_generation_safe,
        chat_model=chat_model,
        documents=documents,
        pms=pms,
        desk=desk,
        redis=redis,
        providers={
            "llm": f"{model_provider}:{llm.model}",
            "embeddings": embedder.model_name,
            "pms": settings.pms_backend,
            "checkpointer": "langgraph-server" if served else type(checkpointer).__name__,
        },
    )
