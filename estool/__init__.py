"""estool: evolution strategies (es.py), the MPI rollout fan-out (fanout.py) and episode recordings
(recording.py) shared by the experiments."""
