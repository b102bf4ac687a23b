"""The firewall capability: forwarding and NAT for the VPN, in one nftables table.

ruleset  the wanted table, rendered from validated values only
plan     facts + wanted -> actions (replace the table, or just add/remove set members)
apply    `nft -f` (one atomic transaction) and forwarding sysctls
"""
