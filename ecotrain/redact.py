"""Keep secrets out of the store: redact values of secret-looking flags, variables and URLs."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

MASK = "***"
_SECRET_WORDS = r"(?:token|api[-_]?key|apikey|password|passwd|secret|credentials?|auth)"
# --token X, --api-key=X, --hf_token X, -p is too ambiguous to touch.
_FLAG = re.compile(rf"^--?[\w-]*{_SECRET_WORDS}[\w-]*$", re.I)
_FLAG_EQ = re.compile(rf"^(--?[\w-]*{_SECRET_WORDS}[\w-]*=)(.*)$", re.I)
# NAME_TOKEN, NAME_KEY, NAME_SECRET, PASSWORD... as env names or KEY=VALUE arguments.
_VAR = re.compile(r"^[A-Z0-9_]*(?:TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIALS?)(?:_[A-Z0-9]+)?$")
_KV = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*=)(.*)$")
_URL_PASSWORD = re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@/\s]+@", re.I)
# Hugging Face, OpenAI, GitHub, AWS, Slack style tokens appearing anywhere.
_TOKEN = re.compile(
    r"\b(?:hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|"
    r"AKIA[0-9A-Z]{16}|xox[abpr]-[A-Za-z0-9-]{10,})\b"
)


def redact_text(text: str) -> str:
    """Mask URL passwords and well-known token shapes inside free text."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('pre')}{MASK}@", text)
    return _TOKEN.sub(MASK, text)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A copy of ``argv`` with secret values replaced by ``***``."""
    out: list[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            out.append(MASK)
            mask_next = False
            continue
        if m := _FLAG_EQ.match(arg):
            out.append(m.group(1) + MASK)
            continue
        if _FLAG.match(arg):
            out.append(arg)
            mask_next = True
            continue
        if (m := _KV.match(arg)) and _VAR.match(m.group(1)[:-1].upper()):
            out.append(m.group(1) + MASK)
            continue
        out.append(redact_text(arg))
    return out


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` with secret-looking variables masked."""
    return {k: (MASK if _VAR.match(k.upper()) else redact_text(v)) for k, v in env.items()}
