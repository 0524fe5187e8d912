"""Outside systems files come from: one module each (folder.py: local drop folders, sftp.py: remote SFTP)."""
