"""Household accounts: who may use the box, and how they prove it.

schema     users in the desired state (name, role, language, second factor on/off)
passwords  argon2id hashes and the passphrase strength check
sessions   runtime state: sessions, failed logins, the setup code (not revisioned)
service    claim, users, login and logout, as functions the API calls

Password hashes, TOTP secrets and recovery codes live in the secret store.
"""
