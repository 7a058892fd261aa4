"""State several gateway instances share: ``LocalState`` for one instance, ``RedisState`` (over
one ``RedisLink``) for several. The limiter and the pool are given one at construction."""
