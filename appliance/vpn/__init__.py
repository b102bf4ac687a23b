"""The VPN capability: a WireGuard tunnel home for every family device.

schema   its slice of the desired state (settings and devices)
service  the changes a household makes (add, change, remove a device)
plan     facts + desired -> actions, a pure function
apply    carries actions out through a backend (kernel netlink or wireguard-go)
export   a device's wg-quick config and QR code
health   what the dashboard shows
"""
