"""Is what the household must publish in DNS really there? Asked of the box's own resolver,
as the rest of the world would ask theirs, each record in parallel."""

import concurrent.futures

import dns.exception
import dns.resolver

TIMEOUT = 4.0  # seconds for each record, retries included


def nameservers(resolv_conf: str) -> list[str]:
    """The `nameserver` lines of a resolv.conf."""
    return [
        f[1]
        for f in (line.split() for line in resolv_conf.splitlines())
        if len(f) >= 2 and f[0] == "nameserver"
    ]


def normal(rtype: str, value: str) -> str:
    """One spelling for one meaning: names lower case and absolute, TXT strings joined."""
    if rtype == "TXT":
        return value
    return " ".join(f.lower() if f[-1:] == "." else f for f in value.split())


def answer_text(rtype: str, rdata) -> str:
    if rtype == "TXT":
        return b"".join(rdata.strings).decode("utf-8", "replace")
    return normal(rtype, rdata.to_text())


def check(records: list[dict], servers: list[str], timeout: float = TIMEOUT) -> list[dict]:
    """RECORDS (name, type, value) with what DNS answers for each: `state` is
    "published" (the value is there), "different" (other values are: `found`), "missing"
    (no such record) or "unknown" (no answer in time: `error` says why)."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = servers
    resolver.lifetime = timeout

    def one(record: dict) -> dict:
        rtype = record["type"]
        try:
            found = [
                answer_text(rtype, r) for r in resolver.resolve(record["name"], rtype, search=False)
            ]
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return {**record, "state": "missing", "found": []}
        except (dns.exception.DNSException, OSError) as err:
            return {
                **record,
                "state": "unknown",
                "found": [],
                "error": str(err).splitlines()[0] if str(err) else type(err).__name__,
            }
        state = "published" if normal(rtype, record["value"]) in found else "different"
        return {**record, "state": state, "found": found}

    if not servers:
        return [
            {**r, "state": "unknown", "found": [], "error": "the box has no DNS resolver"}
            for r in records
        ]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, records))
