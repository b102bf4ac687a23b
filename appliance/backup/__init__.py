"""Backups: the household's whole box, as one consistent snapshot, into an encrypted
Borg repository; and a whole box restored from one with its backup key.

schema     the slice: where the repository is (a local directory for now)
snapshot   what is kept and how it is copied while the services run; where it goes back
borg       the borg commands, their arguments and what their errors mean (typed)
record     the last good backup and check, for the health check
service    setting up a repository, a backup now, the list, a check, a whole restore
capability its declarations (the package, the slice) and the health check
api, cli   what the web UI and `commonsbox backup` may ask
"""
