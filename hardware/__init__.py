"""The box's hardware layer: board profiles, I2C devices, GPIO, the watchdog.

Every device is optional. Absent hardware is reported (DeviceAbsent, or an "absent"
entry in hardware.status.survey()), never an error that stops the agent.
"""
