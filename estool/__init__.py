"""estool: evolution strategies (es.py) and the MPI rollout fan-out (fanout.py) shared by the experiments."""
