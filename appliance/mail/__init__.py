"""Mail: Postfix (SMTP, submission), Dovecot (IMAP, LMTP, authentication) and OpenDKIM,
configured by the agent from the desired state (schema -> render -> capability)."""
