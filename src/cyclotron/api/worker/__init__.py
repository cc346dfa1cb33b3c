"""The worker face: the routes ``cyclotron worker`` processes report through."""
