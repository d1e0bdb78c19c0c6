"""Split a loaded document into chunks: by Markdown section first, then by size with overlap.

The text that gets embedded is prefixed with the document title and section path, so a short
section ("Check-out: by 11:00") still carries what it is about.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from tools.documents.loaders import LoadedDocument

# bump when chunk boundaries change, so re-ingesting replaces chunks cut the old way
CHUNKER_VERSION = 1
_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    section: str
    embed_text: str


class Chunker:
    def __init__(self, *, chunk_size: int, chunk_overlap: int) -> None:
        if chunk_overlap >= chunk_size:
            raise ValueError("chunk overlap must be smaller than the chunk size")
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._sections = MarkdownHeaderTextSplitter(_HEADERS, strip_headers=True)
        self._sizer = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            separators=["\n\n", "\n", ". ", "; ", ", ", " ", ""],
        )

    def split(self, document: LoadedDocument) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section in self._sections.split_text(document.text):
            headings = [
                str(section.metadata[key])
                for _, key in _HEADERS
                if key in section.metadata and section.metadata[key] != document.title
            ]
            path = " > ".join(headings)
            for piece in self._sizer.split_text(section.page_content):
                piece = piece.strip()
                if not piece:
                    continue
                prefix = f"{document.title}\n{path}\n" if path else f"{document.title}\n"
                chunks.append(
                    Chunk(index=len(chunks), text=piece, section=path, embed_text=prefix + piece)
                )
        return chunks
