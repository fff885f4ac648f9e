"""The two special syntaxes of note content (core-api.md 3.20), parsed server-side: a mention
`@[Display Name](user_id)` tags a team member, a reference `[[type:id]]` or
`[[type:id|Display Text]]` links a resource. Anything else is plain Markdown. Pure."""

from __future__ import annotations

import re

SUBJECT_TYPES = ("user", "org", "issuer", "client", "agent")  # NoteSubjectType
REF_TYPES = ("user", "org", "issuer", "client", "webhook", "api_key")  # NoteRefType
# Resources that belong to one issuer: a reference to them carries that issuer.
ISSUER_SCOPED_REFS = frozenset({"user", "org", "client"})

_ID = r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}"
_MENTION = re.compile(r"@\[[^\]\n]{1,200}\]\((" + _ID + r")\)")
_REFERENCE = re.compile(
    r"\[\[(" + "|".join(REF_TYPES) + r"):(" + _ID + r")(?:\|[^\]\n]{0,200})?\]\]"
)


def mentioned_users(content: str) -> list[str]:
    """The mentioned user ids, each once, in order of first appearance."""
    return list(dict.fromkeys(m.group(1) for m in _MENTION.finditer(content)))


def referenced(content: str) -> list[tuple[str, str]]:
    """The referenced (type, id) pairs, each once, in order of first appearance."""
    return list(dict.fromkeys((m.group(1), m.group(2)) for m in _REFERENCE.finditer(content)))
