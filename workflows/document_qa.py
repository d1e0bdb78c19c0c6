"""Document question answering as a LangGraph graph.

input → embed (up to 3 attempts with backoff) → search → answer → respond

The answer is grounded in the retrieved passages: a chat model when one is given (told to use
only the sources), else an extractive answer built from the best-matching sentences. It comes
with its sources and a confidence derived from the retrieval scores. The `respond` node writes
the one message meant to be spoken.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, Field

from tools.artifacts import ToolRole, artifact_tool
from tools.documents import DocumentStore, DocumentStoreError, DocumentStoreUnavailable
from tools.embeddings.hashing import content_words

logger = logging.getLogger(__name__)

SPEAKING_NODES: tuple[str, ...] = ("respond",)
NO_QUESTION = "What would you like me to look up in the documents?"
NOTHING_FOUND = "I couldn't find anything about that in the documents."
UNREACHABLE = "I can't reach the document store right now."
FAILED = "I couldn't search the documents just now."

GROUNDING_PROMPT = (
    "You answer a caller's question using only the numbered sources below. Answer in one to "
    "three short spoken sentences, without lists or markdown. If the sources do not contain "
    "the answer, say you don't know. Never invent facts, numbers or codes."
)


class DocumentQAState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    question: str
    property_id: str | None
    context: dict[str, Any]
    query_vector: list[float]
    hits: list[dict[str, Any]]
    min_score: float
    answer: str
    sources: list[dict[str, Any]]
    confidence: float
    confidence_label: str
    error: str | None


@dataclass(frozen=True)
class DocumentQAConfig:
    k: int = 5
    embed_attempts: int = 3
    backoff_s: float = 0.5
    # how far above the minimum score a top hit must be for full confidence
    confidence_span: float = 0.25
    max_sentences: int = 3


def _last_human_text(messages: list[AnyMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message.text.strip()
    return ""


def confidence_from_scores(scores: list[float], min_score: float, span: float) -> float:
    """0..1 from the top score, smoothed by the next ones: 0 at the threshold, 1 at +span."""
    if not scores:
        return 0.0
    top = scores[:3]
    blended = 0.7 * top[0] + 0.3 * (sum(top) / len(top))
    return round(min(1.0, max(0.0, (blended - min_score) / span)), 3)


def confidence_label(confidence: float) -> Literal["none", "low", "medium", "high"]:
    if confidence <= 0:
        return "none"
    if confidence >= 0.67:
        return "high"
    return "medium" if confidence >= 0.34 else "low"


_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")
_BLOCK_START = re.compile(r"^(?:[-*+]\s|\d+[.)]\s|#|\|)")


def _table_row(line: str) -> str:
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if all(set(c) <= set("-: ") for c in cells):
        return ""
    return ": ".join(c for c in cells if c)


def sentences(text: str) -> list[str]:
    """Sentences of a passage, with hard-wrapped lines joined and Markdown removed."""
    blocks: list[str] = []
    for raw in text.replace("**", "").splitlines():
        line = raw.strip()
        if not line:
            blocks.append("")
            continue
        if line.startswith("|"):
            blocks.extend([_table_row(line), ""])
            continue
        previous = blocks[-1] if blocks else ""
        # a wrapped line continues a sentence; a new item, heading or "Label:" line does not
        if (
            previous
            and not _BLOCK_START.match(line)
            and not previous.endswith((".", ":", "!", "?"))
            and (not line[0].isupper() or len(previous) > 60)
        ):
            blocks[-1] = f"{previous} {line}"
            continue
        blocks.append(line)
    out: list[str] = []
    for block in blocks:
        block = block.lstrip("-*+#> ").strip()
        if not block or (block.isupper() and len(block) < 40):
            continue
        out.extend(s.strip() for s in _SENTENCE_BREAK.split(block) if s.strip())
    return out


def _spoken_sentence(sentence: str) -> str:
    sentence = sentence.rstrip(":;, ")
    return sentence if sentence.endswith((".", "!", "?")) else sentence + "."


def relevant_hits(question: str, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hits with a sentence that shares a content word with the question, in order."""
    wanted = set(content_words(question))
    return [
        hit
        for hit in hits
        if any(wanted & set(content_words(s)) for s in sentences(hit["text"]) if s != hit["title"])
    ]


def extractive_answer(question: str, hits: list[dict[str, Any]], max_sentences: int) -> str:
    """The sentences of the best passages that share the most words with the question."""
    wanted = set(content_words(question))
    candidates: list[tuple[float, int, int, str]] = []
    for rank, hit in enumerate(hits[:3]):
        for position, sentence in enumerate(sentences(hit["text"])):
            if sentence == hit["title"]:
                continue
            overlap = len(wanted & set(content_words(sentence)))
            if overlap:
                candidates.append((overlap / (1 + rank), rank, position, sentence))
    if not candidates:
        return " ".join(sentences(hits[0]["text"])[:2])
    best = sorted(candidates, key=lambda c: -c[0])[:max_sentences]
    ordered = sorted(best, key=lambda c: (c[1], c[2]))
    return " ".join(_spoken_sentence(s) for *_, s in ordered)


def _sources(hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for hit in hits:
        if hit["source"] not in seen:
            seen[hit["source"]] = {
                "source": hit["source"],
                "title": hit["title"],
                "chunk": hit["chunk"],
                "score": hit["score"],
            }
    return list(seen.values())


def build_document_qa_graph(
    store: DocumentStore,
    *,
    model: BaseChatModel | None = None,
    config: DocumentQAConfig | None = None,
    checkpointer: Any = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the retrieval graph over `store`; `model` (optional) writes grounded answers."""
    cfg = config or DocumentQAConfig()

    async def take_input(state: DocumentQAState) -> dict[str, Any]:
        question = (state.get("question") or "").strip() or _last_human_text(
            state.get("messages", [])
        )
        property_id = state.get("property_id") or (state.get("context") or {}).get("property_id")
        return {
            "question": question,
            "property_id": property_id,
            "error": None,
            "hits": [],
            "answer": "",
            "sources": [],
            "confidence": 0.0,
            "confidence_label": "none",
        }

    async def embed(state: DocumentQAState) -> dict[str, Any]:
        for attempt in range(cfg.embed_attempts):
            try:
                return {"query_vector": await store.embed_query(state["question"])}
            except DocumentStoreUnavailable as exc:
                if attempt + 1 == cfg.embed_attempts:
                    logger.error("document_qa: embedding failed %d times: %s", attempt + 1, exc)
                    return {"error": UNREACHABLE}
                delay = cfg.backoff_s * 2**attempt
                logger.warning("document_qa: embedding failed (%s); retry in %.2f s", exc, delay)
                await asyncio.sleep(delay)
            except DocumentStoreError as exc:
                logger.error("document_qa: embedding failed: %s", exc)
                return {"error": FAILED}
        return {"error": FAILED}

    async def search(state: DocumentQAState) -> dict[str, Any]:
        try:
            result = await store.search_vector(
                state["query_vector"],
                k=cfg.k,
                property_id=state.get("property_id"),
                query=state["question"],
            )
        except DocumentStoreUnavailable as exc:
            logger.error("document_qa: search failed: %s", exc)
            return {"error": UNREACHABLE}
        except DocumentStoreError as exc:
            logger.error("document_qa: search failed: %s", exc)
            return {"error": FAILED}
        hits = [hit.to_dict() for hit in result.hits]
        confidence = confidence_from_scores(
            [h["score"] for h in hits], result.min_score, cfg.confidence_span
        )
        return {
            "hits": hits,
            "min_score": result.min_score,
            "sources": _sources(hits),
            "confidence": confidence,
            "confidence_label": confidence_label(confidence) if hits else "none",
        }

    async def answer(state: DocumentQAState) -> dict[str, Any]:
        hits = state["hits"]
        if model is not None:
            numbered = "\n".join(
                f"[{i}] {h['title']}: {' '.join(h['text'].split())}"
                for i, h in enumerate(hits, start=1)
            )
            try:
                reply = await model.ainvoke(
                    [
                        SystemMessage(GROUNDING_PROMPT),
                        HumanMessage(f"Question: {state['question']}\n\nSources:\n{numbered}"),
                    ]
                )
                text = reply.text.strip()
                if text:
                    return {"answer": text}
            except Exception as exc:  # any model failure falls back to the extractive answer
                logger.warning("document_qa: model failed, answering extractively: %s", exc)
        return {"answer": extractive_answer(state["question"], hits, cfg.max_sentences)}

    async def respond(state: DocumentQAState) -> dict[str, Any]:
        if not state.get("question"):
            text = NO_QUESTION
        elif state.get("error"):
            text = state["error"] or FAILED
        elif not state.get("hits"):
            text = NOTHING_FOUND
        else:
            title = state["sources"][0]["title"]
            text = f"{state['answer']} (Source: {title}.)"
            if state["confidence_label"] == "low":
                lowered = text[0].lower() + text[1:] if text[1:2].islower() else text
                text = f"I'm not certain, but {lowered}"
        # the question is per run; on a checkpointed thread the next turn brings its own
        return {"messages": [AIMessage(text, name="document_qa")], "answer": text, "question": ""}

    def after_input(state: DocumentQAState) -> str:
        return "embed" if state.get("question") else "respond"

    def after_step(next_node: str) -> Any:
        def route(state: DocumentQAState) -> str:
            if state.get("error"):
                return "respond"
            if next_node == "answer" and not state.get("hits"):
                return "respond"
            return next_node

        return route

    graph = StateGraph(DocumentQAState)
    graph.add_node("input", take_input)
    graph.add_node("embed", embed)
    graph.add_node("search", search)
    graph.add_node("answer", answer)
    graph.add_node("respond", respond)
    graph.add_edge(START, "input")
    graph.add_conditional_edges("input", after_input, ["embed", "respond"])
    graph.add_conditional_edges("embed", after_step("search"), ["search", "respond"])
    graph.add_conditional_edges("search", after_step("answer"), ["answer", "respond"])
    graph.add_edge("answer", "respond")
    graph.add_edge("respond", END)
    return graph.compile(checkpointer=checkpointer, name="document_qa")


class AnswerFromDocumentsArgs(BaseModel):
    question: str = Field(description="The caller's question, complete and self-contained.")
    property_id: str | None = Field(
        default=None, description="The property the caller is staying at, when known."
    )


def document_qa_tool(
    store: DocumentStore,
    *,
    model: BaseChatModel | None = None,
    config: DocumentQAConfig | None = None,
) -> BaseTool:
    """The graph as a tool, for the assistant to hand complex document questions to.

    Each call is a fresh run of a graph without a checkpointer: the question is self-contained.
    """
    graph = build_document_qa_graph(store, model=model, config=config)

    async def answer_from_documents(
        question: str, property_id: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        state = await graph.ainvoke({"question": question, "property_id": property_id})
        return state["answer"], {
            "sources": state.get("sources", []),
            "confidence": state.get("confidence", 0.0),
            "confidence_label": state.get("confidence_label", "none"),
        }

    return artifact_tool(
        answer_from_documents,
        metadata={"role": ToolRole.DOCUMENT_ANSWER},
        description=(
            "Answer a question from the house manuals, FAQs and policies, with the source and "
            "a confidence. Use for questions that need the documents rather than the PMS."
        ),
        args_schema=AnswerFromDocumentsArgs,
    )
