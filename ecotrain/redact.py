"""Keep secrets out of the store: redact values of secret-looking flags, variables and URLs."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

MASK = "***"
# A secret word is a whole segment of a name (split on - _ .), so --hf-token and
# WANDB_API_KEY are secrets but --tokenizer, --max-tokens and MAX_TOKENS are not.
_WORDS = (
    r"token|auth[-_]?token|access[-_]?token|api[-_]?key|apikey|access[-_]?key|private[-_]?key"
    r"|secret|secret[-_]?key|client[-_]?secret|password|passwd|pwd|passphrase|credentials?"
)
_SEGMENT = re.compile(rf"(?:^|[-_.])(?:{_WORDS})(?:$|[-_.])", re.I)
# a name ending in "key" (--key, --wandb-key, S3_KEY): keys are secrets more often than not;
# run-together names ending in a secret word (PGPASSWORD, GITHUBTOKEN, OPENAIAPIKEY) too
_KEY_LAST = re.compile(r"(?:(?:^|[-_.])key|password|passwd|secret|apikey|token)$", re.I)
_FLAG = re.compile(r"^--?([A-Za-z][\w.-]*)$")
_FLAG_EQ = re.compile(r"^(--?([A-Za-z][\w.-]*)=)(.*)$", re.S)
# NAME=VALUE arguments, env-style or Hydra-style (trainer.hf_token=..., +wandb.api_key=...)
_KV = re.compile(r"^([+~]{0,2}([A-Za-z_][\w.-]*)=)(.*)$", re.S)
_URL_PASSWORD = re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s]*@", re.I)
# Hugging Face, OpenAI, GitHub, AWS, Slack style tokens appearing anywhere.
_TOKEN = re.compile(
    r"\b(?:hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|"
    r"github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}|"
    r"AKIA[0-9A-Z]{16}|xox[abpr]-[A-Za-z0-9-]{10,})\b"
)
_BEARER = re.compile(r"(?P<pre>\b(?:bearer|basic|token)\s+)[A-Za-z0-9._~+/=-]{8,}", re.I)
# key=value pairs inside a longer argument ("--opts hf_token=abc,lr=3")
_INNER_KV = re.compile(r"(?P<key>[A-Za-z_][\w.-]*)(?P<sep>[=:])(?P<value>[^\s,;&]+)")


def is_secret_name(name: str) -> bool:
    """Whether a flag or variable name (without dashes) names a secret."""
    name = name.lstrip("-+~")
    return bool(_SEGMENT.search(name) or _KEY_LAST.search(name))


def redact_text(text: str) -> str:
    """Mask URL passwords, well-known token shapes, bearer tokens and ``secret_name=value``
    pairs inside free text."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('pre')}{MASK}@", text)
    text = _TOKEN.sub(MASK, text)
    text = _BEARER.sub(lambda m: f"{m.group('pre')}{MASK}", text)
    return _INNER_KV.sub(
        lambda m: (
            f"{m.group('key')}{m.group('sep')}{MASK}"
            if is_secret_name(m.group("key")) and "://" not in m.group(0)
            else m.group(0)
        ),
        text,
    )


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A copy of ``argv`` with secret values replaced by ``***``.

    ``--token X``, ``--api-key=X``, ``HF_TOKEN=X``, ``trainer.password=X``, URLs with a
    password and token-shaped strings anywhere; the program (argv[0]) and flag names stay.
    """
    out: list[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            mask_next = False
            if not arg.startswith("-") or arg == "-":
                out.append(MASK)
                continue
        if m := _FLAG_EQ.match(arg):
            out.append(
                m.group(1) + (MASK if is_secret_name(m.group(2)) else redact_text(m.group(3)))
            )
            continue
        if (m := _FLAG.match(arg)) and is_secret_name(m.group(1)):
            out.append(arg)
            mask_next = True
            continue
        if (m := _KV.match(arg)) and is_secret_name(m.group(2).rsplit(".", 1)[-1]):
            out.append(m.group(1) + MASK)
            continue
        out.append(redact_text(arg))
    return out


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` with secret-looking variables masked."""
    return {k: (MASK if is_secret_name(k) else redact_text(v)) for k, v in env.items()}


def redact_record(record: dict) -> dict:
    """The run record with its free-text fields (command, notes, end reason, tags) redacted:
    the last gate before a record reaches the spool or the database."""
    run = record.get("run")
    if not isinstance(run, dict):
        return record
    run = dict(run)
    if isinstance(run.get("command"), list):
        run["command"] = redact_argv([str(a) for a in run["command"]])
    if isinstance(run.get("notes"), list):
        run["notes"] = [redact_text(str(n)) for n in run["notes"]]
    if isinstance(run.get("end_reason"), str):
        run["end_reason"] = redact_text(run["end_reason"])
    if isinstance(run.get("tags"), dict):
        run["tags"] = {
            k: (MASK if is_secret_name(str(k)) else redact_text(str(v)))
            for k, v in run["tags"].items()
        }
    return {**record, "run": run}
