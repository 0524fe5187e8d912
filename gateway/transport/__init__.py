"""Outside systems, one module (or a few `sftp_*` ones) each: folder.py (local drop folders), sftp.py (remote SFTP),
http.py (partner APIs, bounded by bounds.py). inbox.py says what every file source offers; errors.py holds every
error they raise, for the service layer to import without importing a transport."""
