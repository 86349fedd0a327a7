"""Human review: the worth-a-look log (log) and the review page's server (server)."""
