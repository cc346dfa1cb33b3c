"""The services layer: the only place that opens transactions and decides what happens to a job."""
