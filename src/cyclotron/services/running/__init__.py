"""Running: a job while its tasks run (here, on workers, on clusters), and its merge."""
