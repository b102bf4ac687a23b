"""What chronyd is told: the box's clock from public NTS servers, as a client only.

The box needs true time: certificates (TLS), the codes of authenticator apps (TOTP), mail
signatures (DKIM) and the update feed's expiry all read the clock. So its time comes only
from servers it can authenticate, with Network Time Security (RFC 8915: a TLS key
exchange with the server, then NTP packets authenticated with the keys it gave).

The servers: four, each run by a different organisation that runs time as a public
service on its own infrastructure, so that no one operator, outage or compromised key
sets the box's clock alone (minsources 2: two must agree before the clock moves):

  time.cloudflare.com  Cloudflare: anycast from its data centres on every continent,
                       near any household; NTS since 2019
  nts.netnod.se        Netnod, which runs Sweden's official time (UTC(SP)), stratum 1,
                       anycast
  ptbtime1.ptb.de      PTB, Germany's national metrology institute, which keeps the legal
                       time there (UTC(PTB)), stratum 1
  ntppool1.time.nl     TimeNL by SIDN Labs (the .nl registry), stratum 1

The time the box last knew is kept by chronyd's drift file on the data partition (both
root slots share it): the image's unit starts chronyd with -s, which moves a clock that is
behind that file's modification time forward to it. The battery clock is the kernel's and
the hardware service's (hardware/README.md): chronyd itself reads none (rtcdevice
/dev/null), as -s would set the clock back to a flat battery's time; rtcsync lets the
kernel keep a kernel RTC in step and tells the hardware service the clock is synchronised.
"""

from dataclasses import dataclass

from ..daemonconfig import lines


@dataclass(frozen=True)
class TimeServer:
    host: str
    operator: str  # who runs it, as the settings page names them


SERVERS = (
    TimeServer("time.cloudflare.com", "Cloudflare"),
    TimeServer("nts.netnod.se", "Netnod"),
    TimeServer("ptbtime1.ptb.de", "PTB"),
    TimeServer("ntppool1.time.nl", "SIDN Labs"),
)
MINSOURCES = 2  # servers that must agree before the clock moves
DRIFT = "/var/lib/commonsbox/clock/chrony.drift"  # its modification time: the saved time
SOCKET = "/run/chrony/chronyd.sock"  # chronyc's way in; root and _chrony only
PIDFILE = "/run/chrony/chronyd.pid"


def config(sync: bool, servers: tuple[TimeServer, ...] = SERVERS) -> bytes:
    """chrony.conf: with SYNC the NTS servers, without it none (the clock then runs on
    its own, and drifts). Everything else is the same either way."""
    return lines(
        [
            "# Written by the Commonsbox agent (appliance/clock): time from NTS servers only.",
            *(f"server {s.host} iburst nts" for s in servers if sync),
            f"minsources {MINSOURCES}",
            # Never a source that is not authenticated, should one ever be configured.
            "authselectmode require",
            # A clock far off is stepped in the first three updates only, then slewed.
            "makestep 1 3",
            # The certificates' dates are not checked before the first update: a box with
            # no battery clock starts with the wrong date and could otherwise never get
            # the time. Their chain and names still are, and two servers must agree.
            "nocerttimecheck 1",
            f"driftfile {DRIFT}",
            "ntsdumpdir /var/lib/chrony",  # cookies kept: no key exchange at each start
            "rtcsync",
            "rtcdevice /dev/null",
            "leapseclist /usr/share/zoneinfo/leap-seconds.list",
            # A client only: no NTP server port, no UDP command port; chronyc speaks to
            # it over its Unix socket.
            "port 0",
            "cmdport 0",
            f"bindcmdaddress {SOCKET}",
            f"pidfile {PIDFILE}",
        ]
    )
