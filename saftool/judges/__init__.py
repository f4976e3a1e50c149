"""Judge backends, loaded lazily by name through saftool.judge.JUDGES."""
