"""The domain layer: rooms, members and tokens, with Redis as the only source of truth.

Every state change is one Lua script (one round trip, atomic) that also
publishes the resulting event, so state and event order can never disagree.
"""
