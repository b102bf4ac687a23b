"""Updates: whole root images, A/B, signed, tried once and kept only if the box is healthy.

feed        a static directory (HTTPS, a USB stick, or an upload): signed metadata
            naming the version, board, bundle hash and an expiry (feed.py); the box
            refuses tampered, older, expired and other boards' bundles
bundle      a RAUC verity bundle made from a built image (image/cbimage bundle),
            installed by RAUC into the inactive root slot while the box serves
boot        one interface over the bootloaders (boot/): GRUB with boot counting on
            the QEMU boards (OVMF, AAVMF), the Pi firmware's tryboot on the Pi; the
            new slot is tried once
gate        after the trial boot, the slot is marked good only when the agent is
            ready, the services that ran before run again, the web UI answers and the
            VPN is up, within a deadline; otherwise the box boots the old slot again
state       the stores carry a schema version and migrate forward; a snapshot taken
            before migrating is put back if the old slot comes back
"""
