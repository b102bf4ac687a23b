"""Which cipher encrypts the household's storage: chosen from the CPU, shown, overridable.

AES-XTS is fast where the CPU has AES instructions (x86's AES-NI, the ARMv8 Crypto
Extensions). A Raspberry Pi 4 has none: there Adiantum (XChaCha12 + AES used only on a
small hash, built for exactly such CPUs) is faster, about 107 MiB/s against 88.
"""

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Cipher:
    name: str  # what the household sees and may choose
    spec: str  # cryptsetup's --cipher
    key_bits: int


AES_XTS = Cipher("aes-xts", "aes-xts-plain64", 512)
ADIANTUM = Cipher("adiantum", "xchacha12,aes-adiantum-plain64", 256)
CIPHERS = {c.name: c for c in (AES_XTS, ADIANTUM)}


def has_aes(cpuinfo: str) -> bool:
    """/proc/cpuinfo says so: "flags" on x86, "Features" on arm64."""
    return any(
        re.match(r"(flags|Features)\s*:", line) and "aes" in line.split(":", 1)[1].split()
        for line in cpuinfo.splitlines()
    )


def choose(cpuinfo: str) -> tuple[Cipher, str]:
    """The cipher for this CPU, and why (in words the storage page shows)."""
    if has_aes(cpuinfo):
        return AES_XTS, "the processor has AES instructions"
    return ADIANTUM, "the processor has no AES instructions (Adiantum is faster without them)"
