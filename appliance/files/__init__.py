"""The household's file share: SFTP on the encrypted storage, through the VPN only."""
