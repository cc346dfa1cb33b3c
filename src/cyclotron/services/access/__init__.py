"""Access: accounts, API keys, login tokens and Keycloak logins."""
