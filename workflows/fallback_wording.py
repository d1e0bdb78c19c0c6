"""What the fallback responder says, in each language the greetings support.

The facts it quotes come from the tools as they are; only the sentences around them are
translated, so a caller who was greeted in German is not answered in English.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["FALLBACK_WORDINGS", "FallbackWording", "wording_for"]


@dataclass(frozen=True, slots=True)
class FallbackWording:
    """What the fallback responder says; `{facts}` / `{problem}` are filled in."""

    found: str = "My language model is unavailable right now, but here is what I found: {facts}"
    nothing_found: str = (
        "My language model is unavailable right now, and I couldn't find anything about "
        "that. Could you ask in other words, or try again a little later?"
    )
    lookup_failed: str = "My language model is unavailable right now, and {problem}"
    no_tools: str = (
        "My language model is unavailable right now, so I can't answer questions at the "
        "moment. Please try again a little later."
    )
    greeting: str = (
        "Hello! My language model is unavailable right now, but I can still look things "
        "up for you. What would you like to know?"
    )
    thanks: str = "You're welcome. Is there anything else I can look up for you?"
    not_heard: str = "Sorry, I didn't catch that. What would you like to know?"


FALLBACK_WORDINGS: Mapping[str, FallbackWording] = {
    "en": FallbackWording(),
    "de": FallbackWording(
        found="Mein Sprachmodell ist gerade nicht verfügbar, aber das habe ich gefunden: {facts}",
        nothing_found=(
            "Mein Sprachmodell ist gerade nicht verfügbar, und dazu habe ich nichts gefunden. "
            "Können Sie es anders formulieren oder es etwas später noch einmal versuchen?"
        ),
        lookup_failed="Mein Sprachmodell ist gerade nicht verfügbar, und {problem}",
        no_tools=(
            "Mein Sprachmodell ist gerade nicht verfügbar, daher kann ich im Moment keine "
            "Fragen beantworten. Bitte versuchen Sie es etwas später noch einmal."
        ),
        greeting=(
            "Hallo! Mein Sprachmodell ist gerade nicht verfügbar, aber ich kann trotzdem "
            "Dinge für Sie nachschlagen. Was möchten Sie wissen?"
        ),
        thanks="Gern geschehen. Kann ich noch etwas für Sie nachschlagen?",
        not_heard="Entschuldigung, das habe ich nicht verstanden. Was möchten Sie wissen?",
    ),
    "fr": FallbackWording(
        found="Mon modèle de langage est indisponible pour le moment, mais voici ce que j'ai "
        "trouvé : {facts}",
        nothing_found=(
            "Mon modèle de langage est indisponible pour le moment, et je n'ai rien trouvé à "
            "ce sujet. Pourriez-vous reformuler, ou réessayer un peu plus tard ?"
        ),
        lookup_failed="Mon modèle de langage est indisponible pour le moment, et {problem}",
        no_tools=(
            "Mon modèle de langage est indisponible pour le moment, je ne peux donc pas "
            "répondre aux questions. Merci de réessayer un peu plus tard."
        ),
        greeting=(
            "Bonjour ! Mon modèle de langage est indisponible pour le moment, mais je peux "
            "quand même chercher des informations pour vous. Que souhaitez-vous savoir ?"
        ),
        thanks="Je vous en prie. Puis-je chercher autre chose pour vous ?",
        not_heard="Pardon, je n'ai pas compris. Que souhaitez-vous savoir ?",
    ),
    "es": FallbackWording(
        found="Mi modelo de lenguaje no está disponible ahora, pero esto es lo que encontré: "
        "{facts}",
        nothing_found=(
            "Mi modelo de lenguaje no está disponible ahora, y no encontré nada sobre eso. "
            "¿Podría preguntarlo de otra forma, o intentarlo un poco más tarde?"
        ),
        lookup_failed="Mi modelo de lenguaje no está disponible ahora, y {problem}",
        no_tools=(
            "Mi modelo de lenguaje no está disponible ahora, así que no puedo responder "
            "preguntas en este momento. Inténtelo un poco más tarde, por favor."
        ),
        greeting=(
            "¡Hola! Mi modelo de lenguaje no está disponible ahora, pero aun así puedo "
            "buscar información para usted. ¿Qué le gustaría saber?"
        ),
        thanks="De nada. ¿Hay algo más que pueda buscar para usted?",
        not_heard="Perdone, no le he entendido. ¿Qué le gustaría saber?",
    ),
    "it": FallbackWording(
        found="Il mio modello linguistico non è disponibile al momento, ma ecco cosa ho "
        "trovato: {facts}",
        nothing_found=(
            "Il mio modello linguistico non è disponibile al momento, e non ho trovato nulla "
            "in merito. Può chiederlo in un altro modo, o riprovare un po' più tardi?"
        ),
        lookup_failed="Il mio modello linguistico non è disponibile al momento, e {problem}",
        no_tools=(
            "Il mio modello linguistico non è disponibile al momento, quindi ora non posso "
            "rispondere alle domande. Riprovi un po' più tardi, per favore."
        ),
        greeting=(
            "Buongiorno! Il mio modello linguistico non è disponibile al momento, ma posso "
            "comunque cercare informazioni per lei. Cosa desidera sapere?"
        ),
        thanks="Prego. C'è qualcos'altro che posso cercare per lei?",
        not_heard="Mi scusi, non ho capito. Cosa desidera sapere?",
    ),
    "pt": FallbackWording(
        found="O meu modelo de linguagem está indisponível neste momento, mas encontrei isto: "
        "{facts}",
        nothing_found=(
            "O meu modelo de linguagem está indisponível neste momento, e não encontrei nada "
            "sobre isso. Pode perguntar de outra forma, ou tentar um pouco mais tarde?"
        ),
        lookup_failed="O meu modelo de linguagem está indisponível neste momento, e {problem}",
        no_tools=(
            "O meu modelo de linguagem está indisponível neste momento, por isso não posso "
            "responder a perguntas agora. Tente um pouco mais tarde, por favor."
        ),
        greeting=(
            "Olá! O meu modelo de linguagem está indisponível neste momento, mas ainda posso "
            "procurar informações para si. O que gostaria de saber?"
        ),
        thanks="De nada. Há mais alguma coisa que eu possa procurar?",
        not_heard="Desculpe, não percebi. O que gostaria de saber?",
    ),
    "nl": FallbackWording(
        found="Mijn taalmodel is op dit moment niet beschikbaar, maar dit heb ik gevonden: {facts}",
        nothing_found=(
            "Mijn taalmodel is op dit moment niet beschikbaar, en ik heb daar niets over "
            "gevonden. Kunt u het anders vragen, of het later nog eens proberen?"
        ),
        lookup_failed="Mijn taalmodel is op dit moment niet beschikbaar, en {problem}",
        no_tools=(
            "Mijn taalmodel is op dit moment niet beschikbaar, dus ik kan nu geen vragen "
            "beantwoorden. Probeer het later nog eens."
        ),
        greeting=(
            "Hallo! Mijn taalmodel is op dit moment niet beschikbaar, maar ik kan nog steeds "
            "dingen voor u opzoeken. Wat wilt u weten?"
        ),
        thanks="Graag gedaan. Kan ik nog iets anders voor u opzoeken?",
        not_heard="Sorry, dat heb ik niet verstaan. Wat wilt u weten?",
    ),
}


def wording_for(language: str | None, wordings: Mapping[str, FallbackWording]) -> FallbackWording:
    """The wording for 'de-CH' → 'de'; English when the language has none."""
    code = (language or "en").replace("_", "-").split("-", 1)[0].lower()
    return wordings.get(code) or wordings.get("en") or FallbackWording()
