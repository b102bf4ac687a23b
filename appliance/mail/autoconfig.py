"""Thunderbird-style autoconfiguration (the "clientConfig" XML that mail apps fetch from
https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml): the app asks only for the
address and the app password. Built as XML, never by pasting strings."""

import xml.etree.ElementTree as ET

from .render import IMAP_PORTS, SMTP_PORTS


def autoconfig_xml(domain: str, display_name: str) -> bytes:
    root = ET.Element("clientConfig", version="1.1")
    provider = ET.SubElement(root, "emailProvider", id=domain)
    ET.SubElement(provider, "domain").text = domain
    ET.SubElement(provider, "displayName").text = display_name
    ET.SubElement(provider, "displayShortName").text = display_name[:32]
    for kind, port in (
        ("incomingServer", IMAP_PORTS["imaps"]),
        ("outgoingServer", SMTP_PORTS["submissions"]),
    ):
        server = ET.SubElement(provider, kind, type="imap" if kind == "incomingServer" else "smtp")
        for tag, text in (
            ("hostname", domain),
            ("port", str(port)),
            ("socketType", "SSL"),
            ("authentication", "password-cleartext"),
            ("username", "%EMAILADDRESS%"),
        ):
            ET.SubElement(server, tag).text = text
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
