"""Keep secrets out of the store: redact values of secret-looking flags, variables and URLs.

Every pattern here runs in linear time, whatever the input: a 100 KB argument once took
minutes because patterns re-scanned the same run of letters from each of its positions. So
each pattern may only *start* where a run begins (a negative look-behind rejects every
position inside a run at once), and its repeats are possessive. tests/test_hostile_run.py
times a 1 MB argument and holds the table of secret shapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

MASK = "***"
# Set on a record once redacted, so the spool and the database do not redact it again.
REDACTED_KEY = "redacted"

# A secret word is a whole segment of a name (split on - _ .), so --hf-token and
# WANDB_API_KEY are secrets but --tokenizer, --max-tokens and MAX_TOKENS are not.
_WORDS = (
    r"token|auth|authorization|auth[-_]?token|access[-_]?token|api[-_]?key|apikey"
    r"|access[-_]?key|private[-_]?key|secret|secret[-_]?key|client[-_]?secret|password"
    r"|passwd|pass|pwd|pw|passphrase|credentials?|cookie|x[-_]?api[-_]?key"
)
_SEGMENT = re.compile(rf"(?:^|[-_.])(?:{_WORDS})(?:$|[-_.])", re.I)
# a name ending in "key" (--key, --wandb-key, S3_KEY): keys are secrets more often than not;
# run-together names ending in a secret word (PGPASSWORD, GITHUBTOKEN, OPENAIAPIKEY) too
_KEY_LAST = re.compile(r"(?:(?:^|[-_.])key|password|passwd|secret|apikey|token)$", re.I)
# ... unless a segment says the value is about the secret, not the secret itself:
# --password-file PATH, --max-token-length 512, --key-type rsa.
_NOT_SECRET = frozenset(
    [
        "file",
        "path",
        "dir",
        "max",
        "min",
        "num",
        "len",
        "length",
        "size",
        "count",
        "limit",
        "type",
        "kind",
        "mode",
    ]
)
_SEGMENTS = re.compile(r"[-_.]")
_FLAG = re.compile(r"^--?([A-Za-z][\w.-]*+)$")
_FLAG_EQ = re.compile(r"^(--?([A-Za-z][\w.-]*+)=)(.*)$", re.S)
# NAME=VALUE arguments, env-style or Hydra-style (trainer.hf_token=..., +wandb.api_key=...)
_KV = re.compile(r"^([+~]{0,2}([A-Za-z_][\w.-]*+)=)(.*)$", re.S)

# -- free text ---------------------------------------------------------------------------
_URL = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*+://[^\s\"'<>`]*+")
# URL query parameters that carry credentials whatever their name says (Azure SAS, S3).
_URL_PARAMS = frozenset(
    [
        "sig",
        "signature",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "code",
        "key",
    ]
)
_QUERY = re.compile(r"(?P<pre>[?&;#](?P<name>[^=&;#?]*+)=)(?P<value>[^&;#]*+)")
# A user name alone before "@" is kept when it looks like one (git@, ubuntu@); anything else
# there (https://ghp_xxx@github.com) is a token.
_PLAIN_USER = re.compile(r"[a-z_][a-z0-9._-]{0,31}")
# Hugging Face, OpenAI, GitHub, GitLab, AWS key id, Slack, Stripe, Google style tokens.
_TOKEN = re.compile(
    r"(?<![A-Za-z0-9])(?:hf_[A-Za-z0-9]{20,}+|sk-[A-Za-z0-9_-]{20,}+|gh[pousr]_[A-Za-z0-9]{20,}+"
    r"|github_pat_[A-Za-z0-9_]{20,}+|glpat-[A-Za-z0-9_-]{20,}+|(?:AKIA|ASIA)[0-9A-Z]{16}+"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}+|[rs]k_live_[A-Za-z0-9]{16,}+|AIza[0-9A-Za-z_-]{30,}+"
    r"|eyJ[A-Za-z0-9_-]{5,}+\.[A-Za-z0-9_-]{5,}+\.[A-Za-z0-9_-]*+)(?![A-Za-z0-9])"
)
_PEM = re.compile(
    r"-----BEGIN (?:[A-Z]++ )*PRIVATE KEY-----(?:(?!-----END).)*+(?:-----END[^-]*+-----)?", re.S
)
# "Bearer X", "Basic X", "token X" (HTTP authorization schemes)
_SCHEME = re.compile(
    r"(?<![A-Za-z0-9_])(?P<pre>(?:bearer|basic|token|digest)\s++)[A-Za-z0-9._~+/=-]{8,}+", re.I
)
# key=value, key: value, "key": "value", 'key': 'value' inside a longer argument
_INNER_KV = re.compile(
    r"(?<![\w.-])(?P<key>(?P<q>[\"']?)[A-Za-z_][\w.-]*+(?P=q))(?P<sep>\s*+[=:]\s*+)"
    r"(?:(?P<vq>[\"'])(?P<quoted>[^\"'\n]*+)(?P=vq)"
    r"|(?P<value>(?:(?:bearer|basic|token|digest)\s++)?[^\s,;&\"'}\]]++))",
    re.I,
)
# High-entropy words: random keys with no known prefix (an AWS secret key, a W&B-style key
# in mixed case); judged by _looks_random, as names and paths also make long words.
_WORD = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{32,}+=*+")


def is_secret_name(name: str) -> bool:
    """Whether a flag or variable name (without dashes) names a secret."""
    name = name.lstrip("-+~")
    if not (_SEGMENT.search(name) or _KEY_LAST.search(name)):
        return False
    return not any(s.lower() in _NOT_SECRET for s in _SEGMENTS.split(name))


def _looks_random(word: str) -> bool:
    """Whether a long word is a random key rather than a name: mixed case and digits,
    changing character class often, and no long run of letters (names are made of words).
    Tuned on random base62/base64 keys against CamelCase model and run names."""
    w = word.rstrip("=")
    if "-" in w or "_" in w:
        return False
    aws = len(w) == 40  # the AWS secret access key shape, which may hold "/" and "+"
    if "/" in w and (not aws or w.startswith("/") or "//" in w):
        return False  # a path
    if not (
        any(c.isupper() for c in w) and any(c.islower() for c in w) and any(c.isdigit() for c in w)
    ):
        return False
    classes = [0 if c.islower() else 1 if c.isupper() else 2 if c.isdigit() else 3 for c in w]
    switches = sum(a != b for a, b in zip(classes, classes[1:], strict=False))
    longest = run = 1
    for a, b in zip(classes, classes[1:], strict=False):
        run = run + 1 if a == b and a < 2 else 1
        longest = max(longest, run)
    return (
        switches >= (0.3 if aws else 0.4) * len(w)
        and longest <= (12 if aws else 6)
        and len(set(w)) >= 0.5 * min(len(w), 62)
    )


def _redact_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    end = len(rest)
    for sep in "/?#":
        i = rest.find(sep)
        if i != -1:
            end = min(end, i)
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        userinfo, _, host = authority.rpartition("@")
        user, colon, _pw = userinfo.partition(":")
        if colon:
            userinfo = f"{user}:{MASK}"
        elif not _PLAIN_USER.fullmatch(userinfo):
            userinfo = MASK
        authority = f"{userinfo}@{host}"
    if tail:
        tail = _QUERY.sub(
            lambda m: (
                m.group("pre") + MASK
                if m.group("value")
                and (is_secret_name(m.group("name")) or m.group("name").lower() in _URL_PARAMS)
                else m.group(0)
            ),
            tail,
        )
    return f"{scheme}://{authority}{tail}"


def _inner_kv(m: re.Match[str]) -> str:
    key = m.group("key").strip("\"'")
    if not is_secret_name(key):
        return m.group(0)
    if m.group("vq") is not None:
        return f"{m.group('key')}{m.group('sep')}{m.group('vq')}{MASK}{m.group('vq')}"
    scheme = m.group("value").split(None, 1)
    kept = f"{scheme[0]} " if len(scheme) == 2 else ""  # "Authorization: Bearer ***"
    return f"{m.group('key')}{m.group('sep')}{kept}{MASK}"


def _redact_plain(text: str) -> str:
    """Text with no URL in it."""
    text = _PEM.sub(MASK, text)
    text = _TOKEN.sub(MASK, text)
    text = _INNER_KV.sub(_inner_kv, text)
    text = _SCHEME.sub(lambda m: f"{m.group('pre')}{MASK}", text)
    return _WORD.sub(lambda m: MASK if _looks_random(m.group(0)) else m.group(0), text)


def redact_text(text: str) -> str:
    """Mask URL credentials, well-known token shapes, authorization headers, random-looking
    keys and ``secret_name=value`` pairs inside free text. Linear in ``len(text)``."""
    if "://" not in text:
        return _redact_plain(text)
    out: list[str] = []
    last = 0
    for m in _URL.finditer(text):
        out.append(_redact_plain(text[last : m.start()]))
        # a token shape in the path (https://h/hf_xxx) is masked too
        out.append(_TOKEN.sub(MASK, _redact_url(m.group(0))))
        last = m.end()
    out.append(_redact_plain(text[last:]))
    return "".join(out)


# Options whose value is a password for mysql, sshpass, zip, ...: `-p X`, `-pX`, `-P X`.
# A number (a port: ssh -p 22), an explicit path (mkdir -p /x) or an option stays.
_SHORT_PASSWORD = frozenset({"-p", "-P"})
_KEEP_SHORT_VALUE = re.compile(r"[\d.:,/-]*|[/.~-].*", re.S)
# single-dash words that begin with -p and are not -p PASSWORD (find, gcc, java, ...)
_P_WORDS = frozenset(
    [
        "-print",
        "-print0",
        "-printf",
        "-prune",
        "-path",
        "-perm",
        "-pthread",
        "-pedantic",
        "-pipe",
        "-pg",
        "-pie",
        "-pass",
        "-passin",
        "-passout",
        "-profile",
        "-proc",
        "-pid",
        "-ppid",
        "-pdb",
        "-px",
        "-pv",
        "-pw",
        "-pwd",
    ]
)
# curl -u user:password, --user, --proxy-user
_USER_PASS = frozenset({"-u", "--user", "--proxy-user", "-U"})


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A copy of ``argv`` with secret values replaced by ``***``.

    ``--token X``, ``--api-key=X``, ``HF_TOKEN=X``, ``trainer.password=X``, ``-p X``,
    ``-u user:X``, URLs with a password or token, token-shaped and random-looking strings
    anywhere; the program (argv[0]) and flag names stay. Linear in the total length.
    """
    out: list[str] = []
    mask_next = ""
    for i, arg in enumerate(argv):
        if mask_next:
            kind, mask_next = mask_next, ""
            if kind == "user":
                user, colon, _ = arg.partition(":")
                if colon and "://" not in arg:
                    out.append(f"{user}:{MASK}")
                    continue
            elif kind == "short":
                if not _KEEP_SHORT_VALUE.fullmatch(arg):
                    out.append(MASK)
                    continue
            elif not arg.startswith("-") or arg == "-":
                out.append(MASK)
                continue
        if i > 0:
            if arg in _SHORT_PASSWORD:
                out.append(arg)
                mask_next = "short"
                continue
            if arg in _USER_PASS:
                out.append(arg)
                mask_next = "user"
                continue
            if (
                arg.startswith("-p")
                and len(arg) > 2
                and arg not in _P_WORDS
                and not _KEEP_SHORT_VALUE.fullmatch(arg[2:])
                and not arg.startswith("-p=")
            ):
                out.append("-p" + MASK)
                continue
        if m := _FLAG_EQ.match(arg):
            out.append(
                m.group(1) + (MASK if is_secret_name(m.group(2)) else redact_text(m.group(3)))
            )
            continue
        if (m := _FLAG.match(arg)) and is_secret_name(m.group(1)):
            out.append(arg)
            mask_next = "flag"
            continue
        if (m := _KV.match(arg)) and is_secret_name(m.group(2).rsplit(".", 1)[-1]):
            out.append(m.group(1) + MASK)
            continue
        out.append(redact_text(arg))
    return out


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` with secret-looking variables masked."""
    return {k: (MASK if is_secret_name(k) else redact_text(v)) for k, v in env.items()}


def redact_settings(values: Mapping[str, object]) -> dict[str, object]:
    """Settings as shown to a person (``ecotrain config show``): URL passwords masked, and
    the value of any secret-named setting."""
    return {
        k: (
            MASK
            if is_secret_name(k.rsplit(".", 1)[-1]) and v not in (None, "")
            else redact_text(v)
            if isinstance(v, str)
            else v
        )
        for k, v in values.items()
    }


# Free-text run fields a person (or an ecotrain option) may have put a secret into.
_TEXT_FIELDS = ("end_reason", "project", "job_id", "job_name", "cwd")


def redact_record(record: dict, command_redacted: bool = False) -> dict:
    """The run record with its free-text fields (command, notes, end reason, project, tags)
    redacted: the last gate before a record reaches the spool or the database.

    Done once: the result carries a mark, and a marked record is returned as it is (the
    spool and the database writer both call this on every record they take).
    ``command_redacted``: the caller already redacted the command (it caches it)."""
    if record.get(REDACTED_KEY):
        return record
    run = record.get("run")
    if not isinstance(run, dict):
        return record
    run = dict(run)
    if isinstance(run.get("command"), list) and not command_redacted:
        run["command"] = redact_argv([str(a) for a in run["command"]])
    if isinstance(run.get("notes"), list):
        run["notes"] = [redact_text(str(n)) for n in run["notes"]]
    for key in _TEXT_FIELDS:
        if isinstance(run.get(key), str):
            run[key] = redact_text(run[key])
    if isinstance(run.get("tags"), dict):
        run["tags"] = {
            k: (MASK if is_secret_name(str(k)) else redact_text(str(v)))
            for k, v in run["tags"].items()
        }
    return {**record, "run": run, REDACTED_KEY: True}
