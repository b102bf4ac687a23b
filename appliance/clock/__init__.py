"""The box's clock: time from public NTS servers (chrony), unless the household turns it
off, with the time it last knew as a floor.

chrony       what chronyd is told: the servers and why those, the floor
capability   the agent's part: the configuration written, chronyd restarted on change
api, cli     what the web UI and `commonsbox clock` may ask
"""
