"""Media a request brings: fetched or decoded from what the client sent, once, at intake."""
