"""Chat: Prosody (XMPP) for the household, federating with the world, configured by the
agent (the shape of daemonconfig.DaemonConfig). Members log in with the same per-app
passwords as for mail, checked by the box's own Prosody auth module."""
