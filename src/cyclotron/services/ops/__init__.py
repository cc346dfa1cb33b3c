"""Operations: the server's status, its metrics and its health."""
