"""Mail from the Internet (port 25): who may claim to have sent it.

Two rules, in this order:
1. The household's own domain is sent only through the box (its members log in on the
   submission ports; the box's own reports go out of its queue). Mail on port 25 whose
   envelope sender, From or Sender names the domain is forged: refused. No DNS needed.
2. Everyone else's mail is checked as the receiving side of SPF (RFC 7208, pyspf), DKIM
   (RFC 6376, dkimpy) and DMARC (RFC 7489, here): the result goes into an
   Authentication-Results header (RFC 8601) for the apps, and mail that fails DMARC
   where the sender's domain asks receivers to reject (p=reject) is refused.

The checks run in the box's mail filter (milter.py) with Debian's python3-spf,
python3-dkim and the public suffix list (publicsuffix), imported only there; the decisions themselves
are plain functions of their inputs, tested as data.
"""

import functools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import getaddresses

TXT = Callable[[str], list[str]]  # name -> its TXT strings (each record's parts joined)


class TempError(Exception):
    """DNS did not answer: the sender should try again later."""


@dataclass
class Verdict:
    refusal: str | None = None  # a permanent "no": the SMTP text after "550 5.7.1 "
    tempfail: str | None = None  # "try later": after "451 4.7.0 "
    results: list[str] = field(default_factory=list)  # Authentication-Results' methods


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().strip("<>").rstrip(".").lower()


def claims(household: str, domain: str) -> bool:
    return domain == household or domain.endswith("." + household)


def own_domain_refusal(
    household: str, mail_from: str, headers: list[tuple[str, str]]
) -> str | None:
    """Why a message arriving from the Internet may not claim the household's domain."""
    why = f"mail from {household} comes only through the box itself, not from the Internet"
    if mail_from and claims(household, domain_of(mail_from)):
        return why
    # Any address in From or Sender, parsed or not: a malformed header must not hide one.
    pattern = re.compile(r"@(?:[a-z0-9-]+\.)*" + re.escape(household) + r"(?![a-z0-9.-])")
    for name, value in headers:
        if name.lower() in ("from", "sender") and pattern.search(value.lower()):
            return why
    return None


def header_from(headers: list[tuple[str, str]]) -> str | None:
    """The one From address's domain; "" when there is none; None when there are two or
    more (DMARC cannot say whose message it is: RFC 7489 6.6.1)."""
    values = [v for n, v in headers if n.lower() == "from"]
    if not values:
        return ""
    addresses = [a for _, a in getaddresses(values) if a]
    if len(values) != 1 or len(addresses) != 1 or "@" not in addresses[0]:
        return None
    return domain_of(addresses[0])


def dmarc_record(texts: list[str]) -> dict[str, str] | None:
    """The one DMARC record among a name's TXT strings (two or more count as none)."""
    records = [t for t in texts if re.match(r"v\s*=\s*DMARC1\s*(;|$)", t)]
    if len(records) != 1:
        return None
    tags = {}
    for part in records[0].split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags[key.strip().lower()] = value.strip()
    if tags.get("p", "").lower() not in ("none", "quarantine", "reject"):
        return None  # without a valid policy the record is not a policy (RFC 7489 6.6.3)
    return tags


def dmarc(
    from_domain: str,
    spf: tuple[str, str],
    dkim_passed: list[str],
    txt: TXT,
    org: Callable[[str], str],
) -> tuple[str, str]:
    """DMARC's result and the policy that applies: ("pass" | "fail" | "none", "reject" |
    "quarantine" | "none" | ""). SPF is (result, the domain it checked); DKIM_PASSED
    the d= domains of the signatures that verified. TXT raises TempError."""
    record = dmarc_record(txt(f"_dmarc.{from_domain}"))
    policy_tag = "p"
    if record is None and org(from_domain) != from_domain:
        record = dmarc_record(txt(f"_dmarc.{org(from_domain)}"))
        policy_tag = "sp"
    if record is None:
        return "none", ""
    policy = record.get(policy_tag, record["p"]).lower()
    if policy not in ("none", "quarantine", "reject"):
        policy = record["p"].lower()

    def aligned(domain: str, mode: str) -> bool:
        if mode.lower() == "s":
            return domain == from_domain
        return org(domain) == org(from_domain)

    spf_result, spf_domain = spf
    passed = (spf_result == "pass" and aligned(spf_domain, record.get("aspf", "r"))) or any(
        aligned(d, record.get("adkim", "r")) for d in dkim_passed
    )
    if passed:
        return "pass", policy
    pct = record.get("pct", "100")
    if policy != "none" and pct.isdigit() and random.randrange(100) >= int(pct):
        policy = {"reject": "quarantine", "quarantine": "none"}[policy]  # RFC 7489 6.6.4
    return "fail", policy


_SAFE = re.compile(r"[A-Za-z0-9._@+-]{1,255}")


def _safe(value: str) -> str:
    """A value for the Authentication-Results header: as is if plain, quoted otherwise."""
    if _SAFE.fullmatch(value):
        return value
    return '"' + re.sub(r'["\\\x00-\x1f\x7f]', "", value)[:255] + '"'


def decide(
    household: str,
    mail_from: str,
    helo: str,
    headers: list[tuple[str, str]],
    spf: Callable[[], str],
    dkim: Callable[[], list[tuple[str, str]]],
    txt: TXT,
    org: Callable[[str], str],
) -> Verdict:
    """The verdict on one message from the Internet. SPF and DKIM are asked lazily
    (result of SPF; (result, d=) per DKIM signature)."""
    refusal = own_domain_refusal(household, mail_from, headers)
    if refusal:
        return Verdict(refusal=refusal)
    from_domain = header_from(headers)
    if from_domain is None:
        return Verdict(refusal="a message must have exactly one From address")
    spf_domain = domain_of(mail_from) if mail_from else helo.lower()
    spf_result = spf()
    signatures = dkim()
    results = [f"spf={spf_result} smtp.{'mailfrom' if mail_from else 'helo'}={_safe(spf_domain)}"]
    results += [f"dkim={r} header.d={_safe(d)}" for r, d in signatures] or ["dkim=none"]
    if not from_domain:
        return Verdict(results=results + ["dmarc=none"])
    try:
        result, policy = dmarc(
            from_domain,
            (spf_result, spf_domain),
            [d for r, d in signatures if r == "pass"],
            txt,
            org,
        )
    except TempError:
        return Verdict(tempfail=f"the DMARC policy of {from_domain} could not be looked up")
    results.append(
        f"dmarc={result}"
        + (f" policy.dmarc={policy}" if policy else "")
        + f" header.from={_safe(from_domain)}"
    )
    if result == "fail" and policy == "reject":
        return Verdict(
            refusal=f"{from_domain} asks receivers to refuse mail that fails DMARC, "
            "and this message does (neither an aligned SPF nor DKIM pass)",
            results=results,
        )
    return Verdict(results=results)


def header_value(authserv_id: str, verdict: Verdict) -> str:
    return authserv_id + ";\r\n\t" + ";\r\n\t".join(verdict.results)


# What the box itself runs: DNS through the box's resolver, the libraries Debian ships.


def dns_txt(name: str) -> list[str]:
    import dns.exception
    import dns.resolver

    try:
        answer = dns.resolver.resolve(name, "TXT", lifetime=10)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as err:
        raise TempError(str(err)) from err
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


PUBLIC_SUFFIXES = "/usr/share/publicsuffix/public_suffix_list.dat"  # Debian's publicsuffix


class PublicSuffixes:
    """The public suffix list's rules (publicsuffix.org/list): the organizational domain
    is the public suffix and one label more (RFC 7489 3.2)."""

    def __init__(self, text: str):
        self.rules: set[str] = set()
        self.wildcards: set[str] = set()  # "*.ck" -> "ck"
        self.exceptions: set[str] = set()  # "!www.ck" -> "www.ck"
        for line in text.splitlines():
            rule = line.split(maxsplit=1)[0].lower() if line.strip() else ""
            if not rule or rule.startswith("//"):
                continue
            try:  # the list writes international names in Unicode; mail has A-labels
                rule = ".".join(
                    label if label in ("*", "!") else label.encode("idna").decode()
                    for label in rule.split(".")
                )
            except UnicodeError:
                continue
            if rule.startswith("!"):
                self.exceptions.add(rule[1:])
            elif rule.startswith("*."):
                self.wildcards.add(rule[2:])
            else:
                self.rules.add(rule)

    def org_domain(self, domain: str) -> str:
        labels = domain.lower().rstrip(".").split(".")
        suffix = 1  # the default rule "*": an unlisted top-level domain (.test too)
        for i in range(len(labels)):  # the longest matching rule wins; exceptions first
            candidate = ".".join(labels[i:])
            if candidate in self.exceptions:
                suffix = len(labels) - i - 1
                break
            if candidate in self.rules or ".".join(labels[i + 1 :]) in self.wildcards:
                suffix = len(labels) - i
                break
        return ".".join(labels[-(suffix + 1) :]) if len(labels) > suffix else domain


@functools.cache
def org_domain() -> Callable[[str], str]:
    """The box's public suffix list, read once."""
    with open(PUBLIC_SUFFIXES, encoding="utf-8") as f:
        return PublicSuffixes(f.read()).org_domain


def check_spf(ip: str, mail_from: str, helo: str) -> str:
    import spf  # type: ignore[import-not-found]

    try:
        result, _ = spf.check2(i=ip, s=mail_from, h=helo, timeout=20)
    except Exception:
        return "temperror"
    return result if result in ("pass", "fail", "softfail", "neutral", "none") else "permerror"


def check_dkim(raw: bytes) -> list[tuple[str, str]]:
    """(result, d=) for each DKIM signature of RAW, in order."""
    import dkim
    from dkim.util import parse_tag_value

    verifier = dkim.DKIM(raw)
    found = [v for n, v in verifier.headers if n.lower() == b"dkim-signature"]
    out = []
    for idx, value in enumerate(found[:8]):  # a handful is plenty; each costs DNS
        try:
            signer = parse_tag_value(value).get(b"d", b"").decode("ascii", "replace")
        except Exception:
            out.append(("permerror", ""))
            continue
        try:
            ok = verifier.verify(idx=idx)
        except Exception:
            ok = False
        out.append(("pass" if ok else "fail", signer.lower()))
    return out


def check(household: str, ip: str, helo: str, mail_from: str, raw: bytes, headers) -> Verdict:
    org = org_domain()
    return decide(
        household,
        mail_from,
        helo,
        headers,
        spf=lambda: check_spf(ip, mail_from, helo),
        dkim=lambda: check_dkim(raw),
        txt=dns_txt,
        org=org,
    )
