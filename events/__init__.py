"""Order events: the stored log, the broadcast doorbell between instances, and
the hub that hands each new event to this process's subscribers."""
