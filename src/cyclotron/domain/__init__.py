"""The domain: states and their allowed transitions, records, and the ports plug-ins implement."""
