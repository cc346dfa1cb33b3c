"""What only the YAPTIDE face needs: simulation ids, update keys, clusters."""
