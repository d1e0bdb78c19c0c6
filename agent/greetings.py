"""The first sentence the agent says, in the caller's language."""

from __future__ import annotations

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
